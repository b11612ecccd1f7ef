"""The component families emsym derives EM for (see ``emsym.families.base`` for what one declares).

``family: gaussian`` runs through its own stages (``emsym.qfunction``/``emsym.derive``/
``emsym.compile``: matrix calculus for full covariances and the mclust blocks, and the per-component
steps the seed sheets quote); its matrix-free forms are also declared here (``.gaussian``) and
derived by the family engine, which ``emsym check`` compares with those stages.  Every other
family -- the shipped ones below and a density an author writes in a model file
(``emsym.families.density``) -- goes through the one family engine (``emsym.family_model`` ->
``emsym.family_derive`` -> ``emsym.family_compile``).  Adding a family is adding a module here and
a line to ``FAMILIES``.
"""

from __future__ import annotations

from .base import DOMAINS, SHAPES, SUPPORTS, Family, Handles, Parameter, Support
from .bernoulli import FAMILY as BERNOULLI
from .categorical import FAMILY as CATEGORICAL
from .exponential import FAMILY as EXPONENTIAL
from .multinomial import FAMILY as MULTINOMIAL
from .poisson import FAMILY as POISSON

__all__ = [
    "DOMAINS",
    "FAMILIES",
    "SHAPES",
    "SUPPORTS",
    "Family",
    "Handles",
    "Parameter",
    "Support",
    "family_names",
]

FAMILIES: dict[str, Family] = {f.name: f for f in (POISSON, EXPONENTIAL, BERNOULLI, MULTINOMIAL, CATEGORICAL)}


def family_names() -> list[str]:
    """Every family a model file may name (``gaussian`` included)."""
    return ["gaussian", *FAMILIES]
