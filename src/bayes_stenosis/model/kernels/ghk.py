r"""The joint statement term's GHK recursion as one PyTensor operation with its gradient.

:func:`~bayes_stenosis.model.terms.threshold_joint.whitened_log_density` unrolled the recursion latent by
latent into a few hundred scalar nodes (flagship: 16 latents); each node of the compiled function
allocates its output, so the nodes' overhead, not the arithmetic, dominated an evaluation. Here the
recursion is one node, :class:`GHKLogDensity`, whose outputs are the value and its gradient with respect
to every float input (one forward and one reverse sweep, :mod:`~bayes_stenosis.model.kernels.ghk_core`);
its ``L_op`` returns those gradient outputs, so a log density with its gradient computes the recursion
once. :class:`JointStatementLogDensity` is the whole term as one node, from the model's own quantities: the
cells' noncentralities, correlation and SD ratios, their intervals and the two Cholesky factors, which were
vectorised graph around the recursion (with their gradients, several times its cost per evaluation), are
computed in the same loops (:mod:`~bayes_stenosis.model.kernels.joint_core`); the model uses it, and
:class:`GHKLogDensity` remains the recursion alone, which the tests integrate against scipy.

Backends: ``perform`` runs the Python source (``JointStatementLogDensity``'s jitted on its own); the numba
backend (nutpie) runs the same source jitted, registered by :func:`register_numba` (imported where nutpie
compiles, so that importing the model does not import numba). ``IMPLEMENTATION``, a hash of
``ghk_core``'s source, is a property of the operation: it enters the model's fingerprint and so the disk
cache's key of compiled models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

#: ``ghk_core``'s source, hashed: a property of the operation, so part of every compiled model's disk-cache
#: key and of PyTensor's numba cache key (a change to the maths can never load code compiled before it).
IMPLEMENTATION = "ghk/" + hashlib.sha256(Path(__file__).with_name("ghk_core.py").read_bytes()).hexdigest()[:16]
#: ``joint_core``'s and ``ghk_core``'s sources, hashed: the same for :class:`JointStatementLogDensity`.
JOINT_IMPLEMENTATION = (
    "joint/"
    + hashlib.sha256(
        b"".join(Path(__file__).with_name(name).read_bytes() for name in ("ghk_core.py", "joint_core.py"))
    ).hexdigest()[:16]
)

#: Positions of the inputs with a gradient (the others are boolean masks and integer layout).
FLOAT_INPUTS = (0, 1, 2, 3, 4, 7)


class ValueAndGradientOp(Op):
    """An operation whose outputs are a scalar value and its gradient with respect to the inputs at
    ``float_inputs``: its ``L_op`` returns those outputs (scaled by the value's adjoint), so a log density
    with its gradient computes the value and gradient once; no second derivatives."""

    __props__ = ("implementation",)
    float_inputs: tuple[int, ...] = ()

    def __init__(self, implementation: str) -> None:
        self.implementation = implementation

    def infer_shape(self, fgraph, node, input_shapes):
        return [(), *(input_shapes[i] for i in self.float_inputs)]

    def connection_pattern(self, node):
        n_grads = len(self.float_inputs)
        return [[i in self.float_inputs] + [False] * n_grads for i in range(len(node.inputs))]

    def L_op(self, inputs, outputs, output_grads):
        if not all(isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            raise NotImplementedError(f"{type(self).__name__} has no second derivatives")
        grad_of = dict(zip(self.float_inputs, outputs[1:], strict=True))
        return [output_grads[0] * grad_of[i] if i in grad_of else DisconnectedType()() for i in range(len(inputs))]


class GHKLogDensity(ValueAndGradientOp):
    """``(logp, dlogp/draw, dlogp/dchol0, dlogp/dchol1, dlogp/dlo, dlogp/dhi, dlogp/dweight)`` of the
    recursion, inputs as :func:`~bayes_stenosis.model.kernels.ghk_core.ghk_log_density`."""

    float_inputs = FLOAT_INPUTS

    def __init__(self, implementation: str = IMPLEMENTATION) -> None:
        super().__init__(implementation)

    def make_node(self, raw, chol0, chol1, lo, hi, lo_inf, hi_inf, weight, arm_of, cell_of, index_of):
        floats = [pt.as_tensor_variable(v).astype("float64") for v in (raw, chol0, chol1, lo, hi)]
        masks = [pt.as_tensor_variable(v).astype("bool") for v in (lo_inf, hi_inf)]
        layout = [pt.as_tensor_variable(v).astype("int64") for v in (arm_of, cell_of, index_of)]
        weight = pt.as_tensor_variable(weight).astype("float64")
        inputs = [*floats, *masks, weight, *layout]
        outputs = [pt.dscalar()] + [inputs[i].type() for i in FLOAT_INPUTS]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        from bayes_stenosis.model.kernels.ghk_core import ghk_log_density  # imports numba: only when run

        for storage, value in zip(output_storage, ghk_log_density(*inputs), strict=True):
            storage[0] = np.asarray(value, dtype="float64")


ghk_log_density_op = GHKLogDensity()

#: :class:`JointStatementLogDensity`'s inputs with a gradient: raw, change, sqrt_n, change_sd_ratio, r_time,
#: r_out, sd_values, pooling, crit, weight (the others are event kinds, flags and integer layout).
JOINT_FLOAT_INPUTS = tuple(range(10))


class JointStatementLogDensity(ValueAndGradientOp):
    """The whole joint statement term as one operation, from the model's own quantities: the noncentralities,
    the cells' correlation and SD ratios, the intervals, the two Cholesky factors and the GHK recursion
    (:func:`~bayes_stenosis.model.kernels.joint_core.term_log_density`), with outputs ``(logp, dlogp/dx
    for each float input x)``.

    :class:`GHKLogDensity` fused the recursion and left the rest to the graph, whose nodes (with their
    gradients) then cost several times the recursion per evaluation (flagship; BENCHMARKS.md).
    """

    float_inputs = JOINT_FLOAT_INPUTS

    def __init__(self, implementation: str = JOINT_IMPLEMENTATION) -> None:
        super().__init__(implementation)

    def make_node(self, *inputs):
        floats = [pt.as_tensor_variable(v).astype("float64") for v in inputs[:10]]
        codes = pt.as_tensor_variable(inputs[10]).astype("int64")
        within_t = pt.as_tensor_variable(inputs[11]).astype("bool")
        layout = [pt.as_tensor_variable(v).astype("int64") for v in inputs[12:]]
        if len(layout) != 9:
            raise TypeError(f"JointStatementLogDensity takes 21 inputs, got {len(inputs)}")
        inputs = [*floats, codes, within_t, *layout]
        outputs = [pt.dscalar()] + [inputs[i].type() for i in JOINT_FLOAT_INPUTS]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        from bayes_stenosis.model.kernels.joint_core import jitted_term  # imports numba: only when run

        for storage, value in zip(output_storage, jitted_term()(*inputs), strict=True):
            storage[0] = np.asarray(value, dtype="float64")


joint_statement_log_density_op = JointStatementLogDensity()


def register_numba() -> None:
    """Register the jitted ``ghk_core`` as the numba implementation of :class:`GHKLogDensity` (idempotent)."""
    from bayes_stenosis.model.kernels import ghk_numba  # noqa: F401  (registers on import)
