"""Names and one-line descriptions of learned rules, in the words of the hand-set tables.

A rule's name reads like a hand-set one (``demo_request``, ``pricing_page_visit``,
``seniority_student``, ``employees_under_50``) and its description says in one line what
it counts and how (``+13 for each demo request, up to 3 demo requests (+39 at most); its
points halve every 30 days``), so a CRM admin can type the table in without this tool.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from predictive_scoring.config import AttributeRule, EventRule, NumberOrText
from predictive_scoring.explain import event_nouns

OWN_EVENT_NOTE = " (sent by the company itself; kept because it predicts conversion)"
MOST_NAMED_VALUES = 3
"""A set rule's name lists at most this many values."""


def snake(text: str) -> str:
    """``"Pricing page visit"`` -> ``pricing_page_visit``, ``"5000+"`` -> ``5000_plus``
    (letters, digits, ``_``)."""
    spelled = text.lower().replace("+", " plus ").replace("<", " under ").replace(">", " over ")
    return re.sub(r"[^0-9a-z]+", "_", spelled).strip("_") or "blank"


def event_noun(rule: EventRule) -> tuple[str, str]:
    """Singular and plural words for what an event rule counts."""
    details = _details(rule)
    event_type = rule.event_type.lower()
    if len(details) == 1:
        return event_nouns(event_type, details[0])
    singular, plural = event_nouns(event_type, None)
    if details:  # a type's other details
        listed = f" ({', '.join(_words(d) for d in details)})"
        return f"other {singular}{listed}", f"other {plural}{listed}"
    return singular, plural


def event_name(rule: EventRule) -> str:
    """``demo_request``, ``pricing_page_visit``, ``email_open_newsletter``,
    ``other_page_visit``."""
    details = _details(rule)
    singular = event_nouns(rule.event_type.lower(), details[0] if len(details) == 1 else None)[0]
    return snake(("other " if len(details) > 1 else "") + singular)


def describe(rule: EventRule | AttributeRule) -> str:
    """A rule's one-line description: its own, or one written from its condition."""
    if rule.description:
        return rule.description
    if isinstance(rule, AttributeRule):
        return attribute_description(rule)
    events = None if rule.cap is None else rule.cap / abs(rule.points)
    return event_description(rule, int(events) if events and events.is_integer() else None,
                             own=False)


def event_description(rule: EventRule, cap_events: int | None, own: bool) -> str:
    """What an event rule gives, e.g. ``+13 for each demo request, up to 3 demo requests
    (+39 at most); its points halve every 30 days``.

    Args:
        rule: The rule.
        cap_events: Most events it counts (its cap over its points), None when its cap (if
            any) is not a whole number of events.
        own: The event is one the company sends itself.
    """
    singular, plural = event_noun(rule)
    points = _signed(rule.points)
    if cap_events == 1:
        text = f"{points} for the first {singular} (later ones add nothing)"
    elif cap_events is not None:
        text = (f"{points} for each {singular}, up to {cap_events} {plural} "
                f"({_signed(rule.points * cap_events)} at most)")
    else:
        text = f"{points} for each {singular}"
        if rule.cap is not None:
            text += f" ({_signed(math.copysign(rule.cap, rule.points))} at most)"
    if rule.half_life_days is not None:
        text += f"; its points halve every {rule.half_life_days:g} days"
    return text + (OWN_EVENT_NOTE if own else "")


def attribute_name(rule: AttributeRule) -> str:
    """``seniority_student``, ``industry_retail_or_education``, ``employees_under_50``,
    ``employees_50_to_199``, ``employees_200_or_more``, ``employees_missing``."""
    field = snake(rule.field)
    values = rule.value if isinstance(rule.value, list) else [rule.value]
    if rule.op in ("eq", "in"):
        named = [snake(str(v)) for v in values[:MOST_NAMED_VALUES]]
        more = len(values) - len(named)
        return f"{field}_{'_or_'.join(named)}" + (f"_and_{more}_more" if more else "")
    words = {"lt": "under_{0}", "lte": "up_to_{0}", "gt": "over_{0}",
             "gte": "{0}_or_more", "between": "{0}_to_{1}", "is_null": "missing"}
    return f"{field}_{words[rule.op].format(*(_number_word(v) for v in values))}"


def attribute_description(rule: AttributeRule) -> str:
    """What an attribute rule gives, e.g. ``Seniority is student or intern: -12``."""
    words = _words(rule.field)
    label = words[:1].upper() + words[1:]
    values = rule.value if isinstance(rule.value, list) else [rule.value]
    shown = [_shown(v) for v in values]
    if rule.op in ("eq", "in"):
        condition = f"{label} is {_listed(shown, 'or')}"
    elif rule.op == "is_null":
        condition = f"{label} is empty"
    elif rule.op == "between":
        condition = f"{label} from {shown[0]} to {shown[1]}"
    else:
        words = {"lt": "under", "lte": "at most", "gt": "over", "gte": "at least",
                 "ne": "not", "contains": "contains"}
        condition = f"{label} {words[rule.op]} {shown[0]}"
    return f"{condition}: {_signed(rule.points)}"


def _details(rule: EventRule) -> list[str]:
    if rule.detail is None:
        return []
    return [rule.detail] if isinstance(rule.detail, str) else list(rule.detail)


def _words(name: str) -> str:
    return name.replace("_", " ").strip()


def _signed(points: float) -> str:
    return f"{points:+g}"


def _shown(value: NumberOrText | None) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 1000 else f"{value:g}"
    return str(value)


def _number_word(value: NumberOrText | None) -> str:
    """A bound as a name part: ``50``, ``0_05``, ``minus_5``."""
    text = _shown(value).replace(",", "")
    return f"minus_{snake(text[1:])}" if text.startswith("-") else snake(text)


def _listed(items: Sequence[str], conjunction: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"
