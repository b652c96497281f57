"""Values in a family's report of a missing relative: the form validators' entry point.

The family report form (issue 7) asks one short question at a time, mostly over
SMS, in the family's language. Its validation actions import from here the pure
functions that turn an answer into a value, or give ``None`` when the answer
cannot be understood (the form then asks again):

- :func:`parse_date`: when the person left or was last heard from
  (:mod:`actions.report_dates`, with the calendars it understands);
- :func:`parse_age`: how old they are, with :attr:`Age.is_minor`
  (:mod:`actions.report_amounts`);
- :func:`parse_phone`: their phone number (E.164) or Telegram handle
  (:mod:`actions.report_contacts`);
- :func:`dont_know`: "I don't know" or "skip" in the fourteen served languages
  (:mod:`actions.report_answers`);
- :func:`correction`: "no, he is 17" -> the corrected answer "he is 17"
  (:mod:`actions.report_answers`);
- :func:`money_demand`: the amount, currency, deadline and means of a ransom
  demand (:mod:`actions.report_amounts`).

These modules import neither Rasa nor the gateway, only the standard library,
``yaml`` and ``phonenumbers``, so the action server and the tests load them
cheaply. How answers are folded before they are read is in
:mod:`actions.report_text`; the multilingual word lists are data, in
``data/report/`` (:mod:`actions.report_words`).
"""

from __future__ import annotations

from actions.report_amounts import Age, MoneyDemand, money_demand, parse_age
from actions.report_answers import Correction, correction, dont_know
from actions.report_contacts import Contact, parse_phone
from actions.report_dates import ParsedDate, Precision, parse_date

__all__ = [
    "Age",
    "Contact",
    "Correction",
    "MoneyDemand",
    "ParsedDate",
    "Precision",
    "correction",
    "dont_know",
    "money_demand",
    "parse_age",
    "parse_date",
    "parse_phone",
]
