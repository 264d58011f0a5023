"""Forward (prior) draws in one vectorised call instead of one compiled-function call per draw.

``pm.sample_prior_predictive`` calls its compiled function once per draw: for the decision table's 20,000
prior draws of delta that is 20,000 Python calls of every random variable's sampler (1.3-2.3 s for the
flagship, 15.6 s for an arm-summary study, whose correlation matrices add linear-algebra calls). Here the
model's graph is vectorised over a leading ``draw`` axis and evaluated once:

* every random variable with no random ancestor (a *root*) is resized to ``(draws, *its shape)``
  (``change_dist_size(..., expand=True)``);
* ``vectorize_graph`` then carries the new axis through every operation below them, and the random
  variables that depend on roots draw one value per row of their (now batched) parameters.

The draws follow the same joint distribution as ``pm.sample_prior_predictive``'s (tested against it) but
from another random stream: the same seed gives the same numbers here on every run, not the same numbers
as PyMC's loop. The function is compiled in ``FAST_COMPILE`` mode (numpy implementations, no C compile):
one call, so there is nothing for a C compile to earn back.
"""

from __future__ import annotations

from collections.abc import Sequence

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.shape_utils import change_dist_size
from pymc.pytensorf import rvs_in_graph
from pytensor.graph.replace import vectorize_graph
from pytensor.graph.traversal import ancestors, toposort
from pytensor.tensor.random.op import RandomVariable
from pytensor.tensor.type_other import NoneTypeT

#: pytensor's mode for the one call of a vectorised forward draw: its default (C where a compiler is found).
#: ``FAST_COMPILE`` (numpy, no C compile) is 5x slower on arm-summary models: its n-ary elementwise
#: operations fall back to a Python loop per element.
FORWARD_MODE = None


def forward_draws(model: pm.Model, var_names: Sequence[str], draws: int, seed: int) -> az.InferenceData:
    """``draws`` joint forward draws of the named model variables, as ``pm.sample_prior_predictive`` returns
    them (one chain; free variables and deterministics in ``prior``, observed variables in
    ``prior_predictive``), from one vectorised evaluation of the model's graph.

    Parameters
    ----------
    model
        A model that can be sampled forward (no variable of ``var_names`` may depend on a flat prior).
    var_names
        Model variables to draw.
    draws
        Number of joint draws.
    seed
        Seed of every random variable's stream.
    """
    names = sorted(set(var_names))
    outputs = [model[name] for name in names]
    batched = _vectorized(outputs, draws)
    function = pm.pytensorf.compile([], batched, random_seed=seed, mode=FORWARD_MODE)
    values = function()
    drawn = {}
    for name, output, new, value in zip(names, outputs, batched, values, strict=True):
        if new is output:  # no random variable upstream (a deterministic of data): the same in every draw
            value = np.broadcast_to(value, (draws, *np.shape(value))).copy()
        elif np.ndim(value) == 0 or np.shape(value)[0] != draws:  # the vectorisation missed a variable
            raise RuntimeError(f"forward draws of {name!r} came out with shape {np.shape(value)}, not ({draws}, ...)")
        drawn[name] = np.asarray(value)
    return pm.to_inference_data(prior=drawn, model=model)


def _vectorized(outputs: list, draws: int) -> list:
    """``outputs`` with a leading axis of ``draws`` joint draws.

    pytensor's ``vectorize_graph`` would do it, but its rule for a random variable with an explicit size
    reads the new batch axes from the first parameter only, and fails when another parameter carries them
    (e.g. a scale that depends on a root); here a random variable with any batched parameter gets the draw
    axis prepended to its size, and every other node goes through ``vectorize_graph``.
    """
    random = rvs_in_graph(outputs)
    batched: dict = {}
    for node in toposort(outputs):
        inputs = [batched.get(var, var) for var in node.inputs]
        if not any(new is not old for new, old in zip(inputs, node.inputs, strict=True)):
            if (
                isinstance(node.op, RandomVariable)
                and node.outputs[1] in random
                and not _has_random_ancestor(node, random)
            ):
                root = node.outputs[1]
                resized = change_dist_size(root, new_size=(draws,), expand=True)
                batched[root] = resized
                batched[node.outputs[0]] = resized.owner.outputs[0]
            continue
        if isinstance(node.op, RandomVariable):
            new_outputs = _batched_random_variable(node, inputs, draws).outputs
        else:
            new_outputs = vectorize_graph(node.outputs, replace=dict(zip(node.inputs, inputs, strict=True)))
        batched.update(zip(node.outputs, new_outputs, strict=True))
    return [batched.get(out, out) for out in outputs]


def _has_random_ancestor(node, random: set) -> bool:
    return bool(set(ancestors(node.inputs)) & random)


def _batched_random_variable(node, inputs: list, draws: int):
    """A random variable whose parameters gained the leading draw axis: one draw per row of them."""
    op: RandomVariable = node.op
    rng, size, *params = inputs
    if isinstance(op.size_param(node).type, NoneTypeT):
        return op.make_node(rng, size, *params)  # the batch shape comes from the parameters
    return op.make_node(rng, pt.concatenate([pt.as_tensor([draws], dtype=size.dtype), size]), *params)
