"""Privacy: retention and purges, deletion on request, key rotation, consent and
referrals, the audit trail of a case."""
