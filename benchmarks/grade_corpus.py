"""A seeded corpus of typed answers to the MIT 6.86x sigma^2 question, with the right verdicts.

Every answer is built from a template whose verdict is known by construction: rewrites of
the expected formula (correct), the typical mistakes and perturbations (incorrect), and
broken or hostile text (invalid).
"""

from __future__ import annotations

import random

EXPECTED = "(gamma_k1*(x_1 - hatmu_k)^2 + gamma_k2*(x_2 - hatmu_k)^2)/(gamma_k1 + gamma_k2)"


def _correct(r: random.Random) -> str:
    a, b = r.choice(["gamma_k1", "gamma_{k1}", "γ_k1"]), r.choice(["gamma_k2", "gamma_{k2}", "γ_k2"])
    m = r.choice(["hatmu_k", "hatmu_{k}"])
    pw = r.choice(["^2", "**2", "²"])
    sq1 = r.choice([f"(x_1 - {m}){pw}", f"({m} - x_1){pw}", f"(x_1 - {m})*(x_1 - {m})", f"(x_1^2 - 2*x_1*{m} + {m}^2)"])
    sq2 = r.choice([f"(x_2 - {m}){pw}", f"({m} - x_2){pw}", f"(x_2-{m})(x_2-{m})"])
    t1, t2 = r.choice([f"{a}*{sq1}", f"{sq1}*{a}", f"{a} {sq1}"]), r.choice([f"{b}*{sq2}", f"{sq2}*{b}"])
    num = r.choice([f"{t1} + {t2}", f"{t2} + {t1}"])
    den = r.choice([f"{a} + {b}", f"{b} + {a}", f"({a}+{b})"])
    form = r.choice(["({n})/({d})", "({n}) / ({d})", "2*({n})/(2*({d}))", "({n})*(1/({d}))", "({n})/({d}) + 0"])
    return form.format(n=num, d=den)


_WRONG = [
    "sqrt({E})",
    "({E})^2",
    "(gamma_k1*(x_1 - mu_k)^2 + gamma_k2*(x_2 - mu_k)^2)/(gamma_k1 + gamma_k2)",
    "(gamma_k1*(x_1 - hatmu_k)^2 + gamma_k2*(x_2 - hatmu_k)^2)/2",
    "((x_1 - hatmu_k)^2 + (x_2 - hatmu_k)^2)/2",
    "gamma_k1*(x_1 - hatmu_k)^2 + gamma_k2*(x_2 - hatmu_k)^2",
    "-({E})",
    "2*({E})",
    "({E})/2",
    "(gamma_k1*(x_2 - hatmu_k)^2 + gamma_k2*(x_1 - hatmu_k)^2)/(gamma_k1 + gamma_k2)",
    "(gamma_k1*(x_1 + hatmu_k)^2 + gamma_k2*(x_2 - hatmu_k)^2)/(gamma_k1 + gamma_k2)",
    "(gamma_k1*(x_1 - hatmu_k) + gamma_k2*(x_2 - hatmu_k))/(gamma_k1 + gamma_k2)",
    "({E})*1.001",
    "({E}) + 0.0001",
    "(gamma_k1*(x_1 - hatmu_k)^2 + gamma_k2*(x_2 - hatmu_k)^3)/(gamma_k1 + gamma_k2)",
]
_INVALID = [
    "",
    "(" * 30,
    "gamma_k1*(x_1 - hatmu_k",
    "sigma^2 = 3",
    "__import__('os')",
    "9^9^9^9",
    "gamma_k1 x_1 / Nk",
    "lambda: 0",
    "x" * 2000,
    "\x00",
    "mu_kk + 1",
    "((x_1]",
]


def corpus(n: int = 10_000, seed: int = 0) -> list[tuple[str, str]]:
    """(answer, right verdict) pairs: 60% correct rewrites, 30% mistakes, 10% invalid."""
    r = random.Random(seed)
    out = []
    for _ in range(n):
        u = r.random()
        if u < 0.6:
            out.append((_correct(r), "correct"))
        elif u < 0.9:
            out.append((r.choice(_WRONG).replace("{E}", EXPECTED), "incorrect"))
        else:
            out.append((r.choice(_INVALID), "invalid"))
    return out
