"""Forward (prior) draws in one vectorised call instead of one compiled-function call per draw.

``pm.sample_prior_predictive`` calls its compiled function once per draw: for the decision table's 20,000
prior draws of delta that is 20,000 Python calls of every random variable's sampler (1.3-2.3 s for the
flagship, 9-15 s for an arm-summary study, whose correlation matrices add linear-algebra calls). Here the
model's graph is vectorised over a leading ``draw`` axis and evaluated once:

* every model random variable with no model random variable upstream (a *root*) is resized to
  ``(draws, *its shape)`` (PyMC's ``change_dist_size(..., expand=True)``, which also resizes what a
  composite distribution such as ``LKJCholeskyCov`` draws inside);
* the new axis is carried through every operation below them (pytensor's ``vectorize_graph``), and the
  random variables below the roots draw one value per row of their now batched parameters.

Drawing all rows at once consumes each variable's random stream in the order PyMC's loop does, so for the
same seed the draws are PyMC's to rounding (tested), except those of a composite distribution, which come
in another order (tested against their closed form). A graph with an operation that cannot be vectorised
(a composite distribution whose parameters depend on another model variable) is drawn by PyMC's loop.
The function is compiled in pytensor's default mode: ``FAST_COMPILE`` (numpy, no C compile) was 5x slower
on arm-summary models, whose n-ary elementwise operations it runs as a Python loop per element.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Sequence
from contextlib import contextmanager

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.distributions.shape_utils import change_dist_size
from pymc.pytensorf import collect_default_updates, reseed_rngs, rvs_in_graph
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.replace import graph_replace, vectorize_graph
from pytensor.graph.traversal import ancestors, graph_inputs, toposort
from pytensor.tensor.random.op import RandomVariable
from pytensor.tensor.type_other import NoneTypeT

from bayes_stenosis.inference.compiled import RecentlyUsed, structure_key


def forward_draws(
    model: pm.Model, var_names: Sequence[str], draws: int, seed: int, *, reuse: bool = True
) -> az.InferenceData:
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
    reuse
        Take the compiled function of an earlier model of the same structure (:data:`FORWARD_FUNCTIONS`),
        with this model's data and ``seed``: a sweep's fits differ only in their priors' hyperparameters
        (data), and a compile is most of the time of these draws. The draws are those of a fresh compile.
    """
    names = sorted(set(var_names))
    key = (structure_key(model), tuple(names), draws)
    function = FORWARD_FUNCTIONS.get(key) if reuse else None
    if function is None or not function.load(model):
        outputs = [model[name] for name in names]
        try:
            batched = _vectorized(outputs, set(model.basic_RVs), draws)
        except (NotImplementedError, ValueError, TypeError):  # no vectorised form: PyMC's loop, the same draws
            with model, quiet_forward_sampling():
                return pm.sample_prior_predictive(draws=draws, random_seed=seed, var_names=names)
        function = ForwardFunction(outputs, batched)
        if reuse:
            FORWARD_FUNCTIONS.put(key, function)
    values = function.draw(seed)
    drawn = {}
    for name, deterministic, value in zip(names, function.constant, values, strict=True):
        if deterministic:  # no random variable upstream (a deterministic of data): the same in every draw
            value = np.broadcast_to(value, (draws, *np.shape(value))).copy()
        elif np.ndim(value) == 0 or np.shape(value)[0] != draws:  # the vectorisation missed a variable
            raise RuntimeError(f"forward draws of {name!r} came out with shape {np.shape(value)}, not ({draws}, ...)")
        drawn[name] = np.asarray(value)
    return pm.to_inference_data(prior=drawn, model=model)


class ForwardFunction:
    """The compiled vectorised draws of a model's variables, on shared variables of its own.

    The graph's data containers, dimension lengths and random generators are replaced by copies, so that
    loading another model's data (:meth:`load`) changes no model's values, and the random generators are
    reseeded per call (:meth:`draw`) in the order ``pm.pytensorf.compile`` seeds them: the draws are those of
    a fresh compile for the same model and seed.
    """

    def __init__(self, outputs: list, batched: list) -> None:
        self.constant = [new is old for new, old in zip(batched, outputs, strict=True)]
        shared = [v for v in graph_inputs(batched) if isinstance(v, SharedVariable)]
        own = {v: pytensor.shared(copy.deepcopy(v.get_value(borrow=True)), name=v.name) for v in shared}
        batched = graph_replace(batched, own, strict=False)
        self.rngs = list(collect_default_updates(inputs=[], outputs=batched))  # compile's seeding order
        rngs = set(self.rngs)
        self.data = {v.name: v for v in own.values() if v not in rngs}
        # default mode (C): see the module docstring; the seed is set per draw
        self.function = pm.pytensorf.compile([], batched)

    def load(self, model: pm.Model) -> bool:
        """Take ``model``'s data values; False (then compile afresh) when a container of this graph is not a
        shared variable of ``model`` by name, or its value does not fit the container's type."""
        containers = [*model.data_vars, *model.dim_lengths.values()]
        values = {v.name: v for v in containers if isinstance(v, SharedVariable)}
        if None in self.data or not set(self.data) <= set(values):
            return False
        try:
            for name, var in self.data.items():
                var.set_value(np.copy(values[name].get_value(borrow=True)))
        except (TypeError, ValueError):  # e.g. a static shape the new value does not have
            return False
        return True

    def draw(self, seed: int) -> list:
        """One evaluation (every draw at once) with the random generators seeded from ``seed``."""
        reseed_rngs(self.rngs, seed)
        return self.function()


#: This process's compiled forward draws by model structure, variables and number of draws (a sweep's fits, a
#: notebook's refits of one structure).
FORWARD_FUNCTIONS = RecentlyUsed(capacity=8)


@contextmanager
def quiet_forward_sampling():
    """PyMC's forward sampling (prior or predictive) without its "Sampling: [...]" log line and its note
    that Potentials (the threshold likelihood) are ignored: the prior is wanted without the data terms, and
    a fit prints a phase line of its own."""
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Potentials.*")
            yield
    finally:
        logger.setLevel(level)


def _vectorized(outputs: list, model_rvs: set, draws: int) -> list:
    """``outputs`` with a leading axis of ``draws`` joint draws (see the module docstring).

    pytensor's ``vectorize_graph`` alone would not do: its rule for a random variable with an explicit size
    reads the new axis from the first parameter only, and fails when another parameter carries it (a scale
    that depends on a root); here such a variable gets the draw axis prepended to its size.

    Raises
    ------
    NotImplementedError
        An operation below a root has no vectorised form.
    """
    roots = {rv for rv in rvs_in_graph(outputs) & model_rvs if not set(ancestors(rv.owner.inputs)) & model_rvs}
    batched: dict = {}
    for node in toposort(outputs):
        root = next((out for out in node.outputs if out in roots), None)
        if root is not None:
            resized = change_dist_size(root, new_size=(draws,), expand=True)
            batched.update(zip(node.outputs, resized.owner.outputs, strict=True))
            continue
        inputs = [batched.get(var, var) for var in node.inputs]
        if all(new is old for new, old in zip(inputs, node.inputs, strict=True)):
            continue  # nothing random upstream
        if isinstance(node.op, RandomVariable):
            new_outputs = _batched_random_variable(node, inputs, draws).outputs
        else:
            new_outputs = vectorize_graph(node.outputs, replace=dict(zip(node.inputs, inputs, strict=True)))
        batched.update(zip(node.outputs, new_outputs, strict=True))
    return [batched.get(out, out) for out in outputs]


def _batched_random_variable(node, inputs: list, draws: int):
    """A random variable whose parameters gained the leading draw axis: one draw per row of them."""
    op: RandomVariable = node.op
    rng, size, *params = inputs
    if isinstance(op.size_param(node).type, NoneTypeT):
        return op.make_node(rng, size, *params)  # the batch shape comes from the parameters
    return op.make_node(rng, pt.concatenate([pt.as_tensor([draws], dtype=size.dtype), size]), *params)
