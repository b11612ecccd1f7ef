"""The 14 covariance models of R's mclust, by name (Celeux & Govaert 1995; Fraley & Raftery).

Every covariance is decomposed as Sigma_k = lambda_k D_k A_k D_k^T: a volume lambda_k =
|Sigma_k|^(1/d), a diagonal shape A_k with |A_k| = 1 and an orthogonal orientation D_k.
A name gives each part in that order: E (equal across components), V (varying) or I
(identity: a spherical shape, or axes along the coordinates).

Six names are models emsym already derives in closed form, and are read as them:

    EII = spherical, tied    VII = spherical, free    EEI = diag, tied
    VVI = diag, free         EEE = full, tied          VVV = full, free

The other eight keep their name as ``covariance``.  Their means are derived by matrix calculus
like a full covariance (mu_k = sum_n gamma_nk x_n / N_k for any invertible Sigma_k); their
covariances maximise the covariance part of Q,

    Q_Sigma = -1/2 sum_k [ N_k log|Sigma_k| + tr(W_k Sigma_k^-1) ],  W_k = sum_n gamma_nk (x_n - mu_k)(x_n - mu_k)^T,

over the constrained set, one block at a time (orientation, then shape, then volume).  The
volume and shape blocks are solved by sympy in the derivation (``derivation_steps``); the
orientation block is an eigen-decomposition (von Neumann's trace inequality) or, for an
equal orientation under varying shapes (EVE, VVE), sweeps of exact plane rotations.  Every
block step is a conditional maximiser, so Q never decreases; for EVI, EEV and EVV one pass is
the joint maximiser, and for the five names mclust documents as having no closed form (VEI,
VEE, EVE, VVE, VEV) the passes repeat until the covariances stop moving, from several starts
(Q_Sigma can have several local maxima there; the promise is a local maximum no lower than the
previous covariances, as for mclust's own iterative M-steps).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = [
    "ALIASES",
    "DECOMPOSED",
    "NAMES",
    "NO_CLOSED_FORM",
    "constrained_covariances",
    "describe",
    "n_covariance_params",
    "perturbations",
    "random_covariances",
]

NAMES = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
ALIASES = {
    "EII": ("spherical", "tied"),
    "VII": ("spherical", "free"),
    "EEI": ("diag", "tied"),
    "VVI": ("diag", "free"),
    "EEE": ("full", "tied"),
    "VVV": ("full", "free"),
}
DECOMPOSED = tuple(n for n in NAMES if n not in ALIASES)
NO_CLOSED_FORM = ("VEI", "VEE", "EVE", "VVE", "VEV")  # as mclust's documentation lists them

_WORDS = {"E": "equal", "V": "varying", "I": "identity"}
MAX_PASSES = 5000
RTOL = 1e-12


def describe(name: str) -> str:
    """'VEI' -> 'varying volume, equal shape, axis-aligned orientation'."""
    v, s, o = tuple(name)
    shape = "spherical shape" if s == "I" else f"{_WORDS[s]} shape"
    orient = "axis-aligned orientation" if o == "I" else f"{_WORDS[o]} orientation"
    return f"{_WORDS[v]} volume, {shape}, {orient}"


def n_covariance_params(name: str, K: int, d: int) -> int:
    """Free parameters of the K covariances (mclust's counts)."""
    v, s, o = tuple(name)
    vol = 1 if v == "E" else K
    shape = 0 if s == "I" else (d - 1) * (1 if s == "E" else K)
    orient = 0 if o == "I" else d * (d - 1) // 2 * (1 if o == "E" else K)
    return vol + shape + orient


# -- the derivation of the blocks (sympy) --------------------------------------------------
def derivation_steps(name: str, general_k: bool):
    """(title, text, equation) triples: the volume and shape blocks solved by sympy, the
    orientation rule stated, the update assembled (sympy Equations, see printing.Equation)."""
    import sympy as sp

    from .printing import Equation
    from .roots import roots

    v, s, o = tuple(name)
    k, j, i, l = sp.symbols("k j i l", integer=True, positive=True)
    d, K = sp.Symbol("d", integer=True, positive=True), sp.Symbol("K", integer=True, positive=True)
    Nk, N = sp.IndexedBase("N", positive=True), sp.Symbol("N", positive=True)
    t = sp.IndexedBase("t", positive=True)  # t_k = tr(W_k D_k A_k^-1 D_k^T)
    steps = []
    lam_k, lam = sp.IndexedBase("lambda", positive=True)[k], sp.Symbol("lambda", positive=True)
    # volume: Q_Sigma = -1/2 sum_k [N_k d log lambda_k + t_k / lambda_k]
    if v == "V":
        q = -(Nk[k] * d * sp.log(lam_k) + t[k] / lam_k) / 2
        sol = roots(sp.diff(q, lam_k), lam_k)
        steps.append(
            (
                "Volume block",
                "Q_Sigma = -1/2 sum_k [N_k d log lambda_k + t_k / lambda_k] with "
                "t_k = tr(W_k D_k A_k^-1 D_k^T) (|Sigma_k| = lambda_k^d since |A_k| = 1 and D_k is orthogonal); "
                "each lambda_k has its own stationarity condition, solved by sympy:",
                Equation(lam_k, sol[0]),
            )
        )
    else:
        q = -sp.Sum(Nk[j] * d * sp.log(lam) + t[j] / lam, (j, 1, K)) / 2
        from .summation import linearise  # sums: constants move out (linearity), as for every update

        dq = linearise(sp.diff(q, lam))
        sol = roots(dq, lam)
        sol = [s_.subs(sp.Sum(Nk[j], (j, 1, K)), N) for s_ in sol]
        steps.append(
            (
                "Volume block",
                "One volume lambda for every component: Q_Sigma = -1/2 sum_k [N_k d log lambda "
                "+ t_k / lambda] with t_k = tr(W_k D_k A_k^-1 D_k^T); sympy solves dQ/dlambda = 0, and "
                "sum_k N_k = N:",
                Equation(lam, sol[0]),
            )
        )
    # shape: minimise sum_i b_i / a_i subject to sum_i log a_i = 0 (|A| = 1)
    if s != "I":
        a, b, nu = sp.IndexedBase("a", positive=True), sp.IndexedBase("b", positive=True), sp.Symbol("nu")
        # the terms of the Lagrangian sum_i b_i/a_i + nu sum_i log a_i that hold a_l
        a_l = roots(sp.diff(b[l] / a[l] + nu * sp.log(a[l]), a[l]), a[l])[0]  # a_l = b_l / nu
        nu_val = roots(sp.Sum(sp.log(b[i]), (i, 1, d)) - d * sp.log(nu), nu)[0]
        who = (
            "b_l = sum_k (D_k^T W_k D_k)_ll / lambda_k (one shape for all components)"
            if s == "E"
            else "b_l = (D_k^T W_k D_k)_ll / lambda_k (each component its own shape)"
        )
        steps.append(
            (
                "Shape block",
                f"Minimise tr(W D A^-1 D^T) / lambda = sum_l b_l / a_l with {who}, subject "
                "to |A| = 1, i.e. sum_l log a_l = 0: the Lagrangian sum_l b_l/a_l + nu sum_l log a_l gives "
                f"a_l = {sp.sstr(a_l)}, and the constraint gives nu = {sp.sstr(nu_val)} (the geometric "
                "mean of the b_l), so:",
                Equation(a[l], a_l.subs(nu, nu_val)),
            )
        )
    Dk, Wk, Ak = sp.MatrixSymbol("D_k", d, d), sp.Symbol("W_k"), sp.MatrixSymbol("A_k", d, d)
    eig = sp.Function("eigenvectors")
    if o != "I":
        if o == "V":
            orient = Equation(sp.Symbol("D_k"), eig(Wk))
            text = (
                "For a fixed shape, tr(W_k D_k A_k^-1 D_k^T) over orthogonal D_k is smallest when D_k holds the "
                "eigenvectors of W_k, the largest eigenvalue paired with the largest a_l (von Neumann's trace "
                "inequality): D_k = eigenvectors of W_k."
            )
        elif s != "V":
            orient = Equation(sp.Symbol("D"), eig(sp.Sum(sp.Symbol("W_k") / sp.Symbol("lambda_k"), (k, 1, K))))
            text = (
                "One orientation D with a common shape: sum_k tr(W_k D A^-1 D^T) / lambda_k = "
                "tr(D^T (sum_k W_k / lambda_k) D A^-1), smallest for D = eigenvectors of sum_k W_k / lambda_k "
                "(von Neumann's trace inequality)."
            )
        else:
            theta = sp.Symbol("theta_ij")
            B, C = sp.Symbol("B_ij"), sp.Symbol("C_ij")
            orient = Equation(theta, sp.atan2(-C, -B) / 2)
            text = (
                "One orientation D under varying shapes: f(D) = sum_k tr(D^T W_k D Omega_k) with Omega_k = "
                "A_k^-1 / lambda_k has no closed-form minimiser over orthogonal D. emsym sweeps plane rotations: "
                "turning columns i and j of D by theta changes only the i-th and j-th diagonal entries of "
                "M_k = D^T W_k D, so f(theta) = const + B_ij cos 2 theta + C_ij sin 2 theta with B_ij = sum_k "
                "(Omega_k,i - Omega_k,j)(M_k,ii - M_k,jj)/2 and C_ij = sum_k (Omega_k,i - Omega_k,j) M_k,ij; each "
                "rotation takes the exact minimiser, so f never increases."
            )
        steps.append(("Orientation block", text, orient))
    if name in NO_CLOSED_FORM:
        text = (
            f"{name} has no closed-form M-step (the blocks depend on each other; mclust's documentation lists "
            "VEI, VEE, EVE, VVE and VEV so). emsym repeats the passes orientation -> shape -> volume, each "
            "block the maximiser of Q with the others held, until no covariance entry moves by more than "
            f"{RTOL:g} relative (at most {MAX_PASSES} passes). Q_Sigma can have several local maxima here, so the "
            "passes run from the previous covariances and also from the pooled scatter and from each "
            "component's scatter, and the best end point is kept: a local maximum of Q no lower than at the "
            "previous covariances, so the log-likelihood never decreases (a generalised EM step)."
        )
    else:
        text = (
            f"For {name} one pass orientation -> shape -> volume is the joint maximiser: the orientation does "
            "not depend on the shape's scale or the volume, and the normalised shape does not depend on the volume."
        )
    assembled = Equation(sp.MatrixSymbol("Sigma_k", d, d), sp.Symbol("lambda_k") * Dk * Ak * Dk.T)
    steps.append(("Closed form or iterative", text, assembled))
    return steps


# -- the numeric M-step -------------------------------------------------------------------
def _normalise(b: np.ndarray) -> np.ndarray:
    """b / (prod b)^(1/d), along the last axis: a shape with determinant 1."""
    b = np.maximum(b, np.finfo(float).tiny)
    return b / np.exp(np.mean(np.log(b), axis=-1, keepdims=True))


def _decompose(S: np.ndarray):
    """Sigma_k = lambda_k D_k A_k D_k^T with eigenvalues in decreasing order."""
    w, V = np.linalg.eigh(S)
    w, V = w[..., ::-1], V[..., ::-1]
    lam = np.exp(np.mean(np.log(np.maximum(w, np.finfo(float).tiny)), axis=-1))
    return lam, V, w / lam[..., None]


def _eig_matched(W: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Eigenvectors of W with the j-th largest eigenvalue in the column of the j-th largest a."""
    _, V = np.linalg.eigh(W)
    V = V[:, ::-1]
    D = np.empty_like(V)
    D[:, np.argsort(-a, kind="stable")] = V
    return D


def _jacobi_sweep(D: np.ndarray, W: np.ndarray, Omega: np.ndarray) -> np.ndarray:
    """One sweep of exact plane rotations lowering f(D) = sum_k tr(D^T W_k D diag(Omega_k)).

    Rotating columns i, j of D by theta changes only the i-th and j-th diagonal entries of
    M_k = D^T W_k D, and f(theta) = const + B cos 2 theta + C sin 2 theta with
    B = sum_k (Omega_ki - Omega_kj)(M_k,ii - M_k,jj) / 2 and C = sum_k (Omega_ki - Omega_kj) M_k,ij,
    smallest at 2 theta = atan2(-C, -B); each rotation is that exact minimiser, so f never rises.
    """
    D = D.copy()
    d = D.shape[0]
    for i in range(d - 1):
        for j in range(i + 1, d):
            M = np.einsum("ai,kab,bj->kij", D[:, [i, j]], W, D[:, [i, j]])  # (K, 2, 2) blocks
            w = Omega[:, i] - Omega[:, j]
            B = float(np.sum(w * (M[:, 0, 0] - M[:, 1, 1]))) / 2
            C = float(np.sum(w * M[:, 0, 1]))
            if B == 0 and C == 0:
                continue
            theta = np.arctan2(-C, -B) / 2
            c, s_ = np.cos(theta), np.sin(theta)
            Di, Dj = D[:, i].copy(), D[:, j].copy()
            D[:, i], D[:, j] = c * Di + s_ * Dj, -s_ * Di + c * Dj
    return D


def q_sigma(W, N, S) -> float:
    """-1/2 sum_k [N_k log|Sigma_k| + tr(W_k Sigma_k^-1)]."""
    total = 0.0
    for Wk, Nk, Sk in zip(W, N, S):
        _, logdet = np.linalg.slogdet(Sk)
        total += -0.5 * (Nk * logdet + np.trace(np.linalg.solve(Sk, Wk)))
    return float(total)


def constrained_covariances(name: str, W: np.ndarray, N: np.ndarray, old: np.ndarray) -> tuple[np.ndarray, int]:
    """The M-step for the covariances of mclust model ``name``.

    W : (K, d, d) scatter matrices at the new means; N : (K,) counts; old : (K, d, d)
    the previous covariances.  Returns the new (K, d, d) covariances and the number of passes.

    Where no closed form exists, Q_Sigma can have several local maxima (an equal orientation
    under varying shapes especially), so the block ascent runs from the previous covariances --
    which alone guarantees that Q does not decrease -- and also from the pooled scatter and from
    each component's scatter given to every component; the best end point is kept.
    """
    if name not in NO_CLOSED_FORM:
        return _ascend(name, W, N, old)
    K = len(W)
    starts = [old, np.broadcast_to(W.sum(axis=0) / N.sum(), W.shape)]
    starts += [np.broadcast_to(W[j] / N[j], W.shape) for j in range(K) if N[j] > 0]
    best, best_q, total = None, -np.inf, 0
    for start in starts:
        S, passes = _ascend(name, W, N, np.array(start))
        total += passes
        q = q_sigma(W, N, S) if np.all(np.isfinite(S)) else -np.inf
        if best is None or q > best_q:
            best, best_q = S, q
    assert best is not None  # starts is never empty
    return best, total


def _ascend(name: str, W: np.ndarray, N: np.ndarray, old: np.ndarray):
    """Block ascent orientation -> shape -> volume from ``old`` (projected onto the model)."""
    v, s, o = tuple(name)
    K, d, _ = W.shape
    lam, D, A = _decompose(old)
    if o == "I":
        D = np.broadcast_to(np.eye(d), (K, d, d)).copy()
        A = _normalise(np.diagonal(old, axis1=1, axis2=2))
    # a feasible start: equal parts taken from component 1 (the first pass replaces them)
    if o == "E":
        D = np.broadcast_to(D[0], (K, d, d)).copy()
        A = _normalise(np.einsum("kji,kjl,kli->ki", D, old, D))
    if s == "E":
        A = np.broadcast_to(A[0], (K, d)).copy()
    if s == "I":
        A = np.ones((K, d))
    if v == "E":
        lam = np.full(K, lam[0])
    passes, prev = 0, None
    total_n = float(np.sum(N))
    for passes in range(1, MAX_PASSES + 1):  # noqa: B007 - the number of passes is returned
        # orientation
        if o == "V":
            D = np.array([_eig_matched(W[k], A[k]) for k in range(K)])
        elif o == "E":
            if s != "V":
                D = np.broadcast_to(_eig_matched(np.sum(W / lam[:, None, None], axis=0), A[0]), (K, d, d)).copy()
            else:
                D = np.broadcast_to(_jacobi_sweep(D[0], W, 1.0 / (A * lam[:, None])), (K, d, d)).copy()
        # shape
        B = np.einsum("kji,kjl,kli->ki", D, W, D)  # diag(D_k^T W_k D_k)
        if s == "V":
            A = _normalise(B)
        elif s == "E":
            A = np.broadcast_to(_normalise(np.sum(B / lam[:, None], axis=0)), (K, d)).copy()
        # volume
        t = np.sum(B / A, axis=1)  # tr(W_k D_k A_k^-1 D_k^T)
        lam = t / (d * N) if v == "V" else np.full(K, np.sum(t) / (d * total_n))
        S = np.einsum("k,kij,kj,klj->kil", lam, D, A, D)
        if name not in NO_CLOSED_FORM:
            break
        if prev is not None and np.max(np.abs(S - prev)) <= RTOL * np.max(np.abs(S)):
            break
        prev = S
    return (S + np.swapaxes(S, 1, 2)) / 2, passes


def perturbations(name: str, S: np.ndarray, eps: float) -> Iterator[tuple[str, np.ndarray]]:
    """Feasible perturbations of a block of covariances: (label, perturbed (K, d, d)) pairs.

    Volumes scale by exp(eps) (all at once when equal), shapes move by exp(eps) along
    a_i / a_d (determinant kept), orientations rotate by eps in a coordinate plane (all at
    once when equal).  ``perturbations(name, S, -eps)`` yields the mirror images in the same
    order.  ``emsym check`` uses them to show that the M-step is a constrained maximum.
    """
    v, s, o = tuple(name)
    K, d, _ = S.shape
    lam, D, A = _decompose(S)
    if o == "I":  # keep the axes: the decomposition of a diagonal matrix in coordinate order
        D = np.broadcast_to(np.eye(d), (K, d, d)).copy()
        A = np.diagonal(S, axis1=1, axis2=2) / lam[:, None]
    elif o == "E":  # one orientation for all (component 1's eigenvectors), each shape in its columns
        D = np.broadcast_to(D[0], (K, d, d)).copy()
        A = np.einsum("kji,kjl,kli->ki", D, S, D) / lam[:, None]

    def groups(letter):
        return [list(range(K))] if letter == "E" else [[k] for k in range(K)]

    def build(lam_, D_, A_):
        out = np.einsum("k,kij,kj,klj->kil", lam_, D_, A_, D_)
        return (out + np.swapaxes(out, 1, 2)) / 2

    for grp in groups(v):
        lam_ = lam.copy()
        lam_[grp] *= np.exp(eps)
        yield f"volume {grp}", build(lam_, D, A)
    if s != "I":
        for grp in groups(s):
            for i in range(d - 1):
                A_ = A.copy()
                A_[grp, i] *= np.exp(eps)
                A_[grp, d - 1] *= np.exp(-eps)
                yield f"shape {grp} axis {i}", build(lam, D, A_)
    if o != "I":
        for grp in groups(o):
            for i in range(d):
                for j in range(i + 1, d):
                    R = np.eye(d)
                    R[i, i] = R[j, j] = np.cos(eps)
                    R[i, j], R[j, i] = -np.sin(eps), np.sin(eps)
                    D_ = D.copy()
                    D_[grp] = D_[grp] @ R
                    yield f"orientation {grp} plane {i},{j}", build(lam, D_, A)


def random_covariances(name: str, K: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """K covariances that satisfy model ``name`` (for ``emsym check``'s synthetic data)."""
    v, s, o = tuple(name)

    def orth():
        Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        return Q

    lam = np.full(K, rng.uniform(0.5, 2.0)) if v == "E" else rng.uniform(0.5, 2.0, K) * np.arange(1, K + 1)
    A = (
        np.ones((K, d))
        if s == "I"
        else _normalise(
            np.broadcast_to(rng.uniform(0.3, 3.0, d), (K, d)) if s == "E" else rng.uniform(0.3, 3.0, (K, d))
        )
    )
    D = (
        np.broadcast_to(np.eye(d), (K, d, d))
        if o == "I"
        else np.broadcast_to(orth(), (K, d, d))
        if o == "E"
        else np.array([orth() for _ in range(K)])
    )
    S = np.einsum("k,kij,kj,klj->kil", lam, D, A, D)
    return (S + np.swapaxes(S, 1, 2)) / 2
