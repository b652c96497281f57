"""Privacy: retention and purges, key rotation, the audit trail of a case."""
