"""Words for results: the presentation layer the CLI and the web page share.

The core returns numbers and structured reasons; this package turns them into sentences.

>>> from rigplan.planner.reasons import Reason
>>> avoid_text(Reason("passive_cooling"))
'you lack a server chassis with forced airflow: these cards are passively cooled.'
"""

from __future__ import annotations

from .plan_text import avoid_text, next_step_text, plan_dict, why_text

__all__ = ["avoid_text", "next_step_text", "plan_dict", "why_text"]
