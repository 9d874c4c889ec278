"""Model and prompt A/B: which variant of its intent type's experiment a workflow runs.

The experiments are FLEET_VARIANTS (``worker.config.spend``). A user always gets the
same variant of an experiment: the first 8 bytes of SHA-256 of
``"<experiment>:<userId>"`` pick a point in [0, 1), and the variants, in the order
configured, own consecutive slices of that interval as wide as their shares.
Renaming the experiment reshuffles users; changing shares moves only the users at the
boundaries that moved. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from worker.config import Experiment
from worker.providers.gate import Arm

__all__ = ["Variants", "bucket"]


def bucket(experiment: str, user_id: str) -> float:
    """The user's point in [0, 1) for this experiment."""
    digest = hashlib.sha256(f"{experiment}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class Variants:
    """The experiments per intent type; ``arm_for`` assigns a variant."""

    def __init__(self, experiments: Mapping[str, Experiment] | None = None) -> None:
        self._experiments = dict(experiments or {})

    def __bool__(self) -> bool:
        return bool(self._experiments)

    def prompts(self) -> set[tuple[str, str]]:
        """(intent type, prompt version) pairs the variants use (checked at start-up)."""
        return {
            (intent, spec.prompt)
            for intent, experiment in self._experiments.items()
            for spec in experiment.variants.values()
            if spec.prompt
        }

    def arm_for(self, intent_type: str, user_id: str) -> Arm | None:
        """The variant this user runs for this intent type (named ``experiment/variant``);
        None: no experiment."""
        experiment = self._experiments.get(intent_type)
        if experiment is None:
            return None
        point = bucket(experiment.experiment, user_id) * 100
        edge = 0.0
        chosen = next(iter(experiment.variants))
        for name, spec in experiment.variants.items():
            edge += spec.share
            chosen = name
            if point < edge:
                break
        spec = experiment.variants[chosen]
        return Arm(f"{experiment.experiment}/{chosen}", spec.model, spec.provider, spec.prompt)
