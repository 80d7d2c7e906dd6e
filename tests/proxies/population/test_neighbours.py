"""A loss's result does not depend on its neighbours: the same loss and seed give the same
EvalResult, bit for bit on one machine, alone, beside other losses, split across workers and
across stack chunks, because the path is chosen by proxy and device alone
(``gp_search.proxies.population.path_for``)."""

import pytest

from gp_search import proxies
from gp_search.lang import resolve
from gp_search.parallel import evaluate
from gp_search.proxies.population import train_population

# Beside the two watched losses: reference losses with and without an expression, random-looking
# expressions, and one that goes non-finite at once and leaves the stack at its first check (its slot is
# dropped, so the stack shrinks under the others).
NEIGHBOURS = ["focal", "sce", "ce_l2", "mul(-1, mul(y_real, cos(y_pred)))",
              "sub(1, exp(mul(y_pred, 800)))"]
WATCHED = ["ngl", "ce"]


def _by(results, losses, seeds):
    """``{(loss, seed): result}`` from evaluate's loss-major list."""
    return {(loss, seed): r for loss, rs in zip(losses, [results[i:i + len(seeds)] for i in
                                                         range(0, len(results), len(seeds))])
            for seed, r in zip(seeds, rs)}


def _same(a, b) -> bool:
    return a.same_outcome(b)


@pytest.mark.parametrize("name, path, steps", [
    ("digits-mlp", "mlp-stack", 30),
    ("mnist1d-cnn", "conv-stack", 10)])
def test_alone_beside_others_and_across_workers_agree(name, path, steps):
    proxy = proxies.get(name)
    assert proxies.path_for(proxy.spec, "cpu") == path
    seeds = [0, 1]
    alone = {}
    for loss in WATCHED:  # each loss on its own: for mlp-stack a population of one
        alone.update(_by(evaluate([loss], proxy=name, seeds=seeds, steps=steps, device="cpu"),
                         [loss], seeds))
    assert {r.path for r in alone.values()} == {path} and all(r.ok for r in alone.values())
    few = WATCHED[:1] + NEIGHBOURS[:2] + WATCHED[1:]  # beside 2 others
    many = NEIGHBOURS[:2] + WATCHED + NEIGHBOURS[2:]  # beside 5, one of which leaves the stack
    for losses, jobs in ((few, 1), (many, 1), (many, 2)):  # jobs=2: the seeds on two workers
        got = _by(evaluate(losses, proxy=name, seeds=seeds, steps=steps, jobs=jobs,
                           device="cpu", backend="loky"), losses, seeds)
        for key, want in alone.items():
            assert _same(got[key], want), (key, losses, jobs, got[key], want)
    assert got[(NEIGHBOURS[-1], 0)].status == "nan"  # the stack did shrink under them


def test_mlp_stack_chunks_do_not_change_a_slot(one_torch_thread):
    """Stack chunks of any size give the same result per slot (flat buffers padded, so the
    fused Adam's scalar tail never holds a candidate's parameters), with one torch thread, as
    every evaluation runs (``Proxy.evaluate_many`` and the workers set it). With two threads a
    GEMM may split its work by the stack's size, and the last bits of ``train_loss`` then
    differed (1.3261328 vs 1.3261327, same accuracy) in the full suite on this VM."""
    spec = proxies.get("digits-mlp").spec
    losses = [resolve(t) for t in NEIGHBOURS[:3] + WATCHED]
    one = train_population(spec, losses, 3, 40)
    alone = [train_population(spec, [loss], 3, 40)[0] for loss in losses]
    tiny = train_population(spec, losses, 3, 40, max_stack_mb=0.3)  # chunks of one or two
    assert all(r.path == "mlp-stack" for r in one + tiny + alone)
    for a, b, c in zip(one, alone, tiny):
        assert _same(a, b) and _same(a, c)


def test_path_is_by_proxy_and_device_and_keys_the_cache():
    mlp, cnn = proxies.get("digits-mlp").spec, proxies.get("mnist1d-cnn").spec
    resnet = proxies.ProxySpec("digits-resnet", "digits", "resnet",
                               (("widths", (8, 8, 8)), ("image_shape", (1, 8, 8))))
    assert proxies.path_for(cnn, "cpu") == "conv-stack"
    assert proxies.path_for(resnet, "cpu") == "sequential"
    assert proxies.pays_off(mlp, 1, "cpu") and not proxies.pays_off(resnet, 64, "cpu")
    # Old CPU sequential keys are unchanged (old caches still hit); the others say path and
    # device kind.
    assert proxies.result_key(resnet, "cpu") == resnet.key()
    assert proxies.result_key(mlp, "cpu") == mlp.key() + "/mlp-stack-cpu"
    assert proxies.result_key(cnn, "cpu") == cnn.key() + "/conv-stack-cpu"
    mixup = proxies.get("t-digits-mixup-mlp").spec
    assert proxies.path_for(mixup, "cpu") == "sequential"
    assert proxies.result_key(mixup, "cpu") == mixup.key()
