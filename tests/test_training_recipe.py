"""Loss, per-sample gradients with cut-off, bumping, recipe validation."""
import copy
import math

import numpy as np
import pytest
import torch

from pynn_ttfs.engine import first_spike_times
from pynn_ttfs.training.gradients import layer_backward
from pynn_ttfs.training.datasets import Split
from pynn_ttfs.training.loss import TTFSLoss, correct, predict
from pynn_ttfs.training.model import build_model
from pynn_ttfs.training.recipe import Recipe, improved_recipe, parse_overrides, published_recipe
from pynn_ttfs.training.step import RecipeStep

INF = math.inf


def test_loss_values_silent_label_and_prediction():
    loss = TTFSLoss(xi=0.2, alpha=0.005, beta=1.0)
    times = torch.tensor([[1.0, 2.0, INF], [INF, 1.5, 1.0], [INF, INF, INF]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 2])
    per_sample = loss.per_sample(times, labels)
    expected0 = math.log(math.exp(-5.0) + math.exp(-10.0)) + 5.0 + 0.005 * math.exp(1.0)
    assert per_sample[0].item() == pytest.approx(expected0)
    assert per_sample[1].item() == 100.0 and per_sample[2].item() == 100.0
    assert predict(times).tolist() == [0, 2, -1]
    assert correct(times, torch.tensor([0, 2, 0])).tolist() == [True, True, False]
    t = times.clone().requires_grad_(True)
    loss(t, labels).backward()
    assert torch.isfinite(t.grad).all()
    assert t.grad[1].abs().sum() == 0 and t.grad[0, 2] == 0
    # gradient descent moves the label neuron earlier and the other one later
    assert t.grad[0, 0] > 0 and t.grad[0, 1] < 0
    with pytest.raises(ValueError, match="xi"):
        TTFSLoss(xi=0.0)


def _random_layer(seed, batch=7, n_pre=6, n_post=5, ratio=1.0):
    g = torch.Generator().manual_seed(seed)
    t_in = torch.rand(batch, n_pre, generator=g, dtype=torch.float64) * 2
    t_in[0, 1] = INF
    w = torch.randn(n_pre, n_post, generator=g, dtype=torch.float64) * 0.8 + 1.0
    w[:, 0] = -0.5  # a neuron that never fires
    ones = torch.ones(n_post, dtype=torch.float64)
    return t_in, w, ones, ones * ratio, ones


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_layer_backward_equals_engine_autograd(ratio):
    t_in, w, tau_syn, tau_mem, threshold = _random_layer(3, ratio=ratio)
    t_in.requires_grad_(True)
    w.requires_grad_(True)
    out = first_spike_times(t_in, w, tau_syn, tau_mem, threshold)
    assert torch.isfinite(out).any() and (~torch.isfinite(out)).any()
    g_out = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    gi, gw = torch.autograd.grad(out, [t_in, w], grad_outputs=g_out)
    mine = layer_backward(t_in.detach(), w.detach(), out.detach(), g_out, tau_syn, tau_mem,
                          threshold)
    torch.testing.assert_close(mine.weights, gw)
    torch.testing.assert_close(mine.inputs, gi)
    assert mine.n_cut == 0


def test_gradient_cut_off_drops_sample_neuron_pairs():
    t_in, w, tau_syn, tau_mem, threshold = _random_layer(4)
    out = first_spike_times(t_in, w, tau_syn, tau_mem, threshold)
    g_out = torch.ones_like(out)
    full = layer_backward(t_in, w, out, g_out, tau_syn, tau_mem, threshold)
    # per-sample gradients, one sample at a time, through the engine
    per_sample = []
    for b in range(t_in.shape[0]):
        wb = w.clone().requires_grad_(True)
        ob = first_spike_times(t_in[b:b + 1], wb, tau_syn, tau_mem, threshold)
        (gw,) = torch.autograd.grad(ob, wb, grad_outputs=g_out[b:b + 1])
        per_sample.append(gw)
    per_sample = torch.stack(per_sample)  # (batch, n_pre, n_post)
    largest = per_sample.abs().amax(dim=1)
    cut = float(largest[largest > 0].median())
    keep = largest <= cut
    expected = (per_sample * keep[:, None, :]).sum(0)
    mine = layer_backward(t_in, w, out, g_out, tau_syn, tau_mem, threshold, max_weight_grad=cut)
    torch.testing.assert_close(mine.weights, expected)
    assert mine.n_cut == int(((largest > cut)).sum()) > 0
    torch.testing.assert_close(mine.inputs, full.inputs)  # input-time gradient is kept


def test_recipe_min_slope_reaches_the_layer_backward():
    """RecipeStep passes recipe.min_slope to every layer: at times recorded past the
    model's crossing, the gradients equal layer_backward's with that min_slope."""
    recipe = Recipe(hidden=[4], bias_times=[None, None], min_slope=0.3, max_weight_grad=None)
    model = build_model([3, 4, 2], [2.0, 2.0], [0.5, 0.5], [None, None],
                        torch.Generator().manual_seed(2))
    t_in = torch.rand(6, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    # late, as slower chip neurons fire, the output layer later still (relative to its inputs)
    times = [t + shift for t, shift in zip(model.forward(t_in), (1.0, 2.0))]
    assert all(torch.isfinite(t).any() for t in times)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    step = RecipeStep(model, recipe)
    _, grads, _ = step.gradients(t_in, times, labels)
    _, plain, _ = RecipeStep(model, recipe.replace(min_slope=None)).gradients(t_in, times, labels)
    out = layer_backward(times[0], model.layers[1].weights.detach(), times[1],
                         torch.autograd.functional.jacobian(lambda o: step.loss_fn(o, labels), times[1]),
                         *(getattr(model.layers[1], n) for n in ("tau_syn", "tau_mem", "threshold")),
                         min_slope=0.3)
    torch.testing.assert_close(grads[1], out.weights)
    assert out.n_low_slope > 0 and not torch.equal(grads[1], plain[1])


def test_weight_bumping_doubles_and_skips_the_step():
    recipe = Recipe(max_silent_fraction=[0.0, 0.0], bump_value=1e-3)
    model = build_model([2, 3, 2], [0.0, 0.0], [0.0, 0.0], [None, None],
                        torch.Generator().manual_seed(0))
    step = RecipeStep(model, recipe)
    inputs = torch.zeros(4, 2, dtype=torch.float64)
    hidden = torch.tensor([[1.0, INF, 1.0]] * 4, dtype=torch.float64)
    out = torch.full((4, 2), INF, dtype=torch.float64)
    labels = torch.zeros(4, dtype=torch.long)
    before = [p.detach().clone() for p in model.parameters]
    first = step(inputs, [hidden, out], labels)
    assert first.bumped_layer == 0
    delta = model.layers[0].weights.detach() - before[0]
    np.testing.assert_allclose(delta.numpy(), [[0, 1e-3, 0]] * 2)
    assert torch.equal(model.layers[1].weights.detach(), before[1])  # no gradient step
    step(inputs, [hidden, out], labels)
    delta = model.layers[0].weights.detach() - before[0]
    np.testing.assert_allclose(delta.numpy(), [[0, 3e-3, 0]] * 2)  # 1e-3 then doubled
    hidden_ok = torch.ones(4, 3, dtype=torch.float64)
    third = step(inputs, [hidden_ok, out], labels)
    assert third.bumped_layer == 1
    np.testing.assert_allclose((model.layers[1].weights.detach() - before[1]).numpy(), 1e-3)


def test_recipe_defaults_and_validation():
    yy = published_recipe("yinyang")
    assert (yy.hidden, yy.lr, yy.batch_size, yy.epochs, yy.bias_times) == ([120], 0.005, 150, 300, [0.9, 0.9])
    m16 = published_recipe("mnist16")
    assert (m16.hidden, m16.lr, m16.lr_step, m16.input_noise) == ([128], 0.003, 10, 0.3)
    m = published_recipe("mnist", epochs=2)
    assert (m.hidden, m.batch_size, m.epochs, m.max_silent_fraction) == ([350], 80, 2, [0.15, 0.05])
    with pytest.raises(ValueError, match="unknown dataset"):
        published_recipe("cifar")
    with pytest.raises(ValueError, match="optimizer"):
        Recipe(optimizer="rmsprop")
    with pytest.raises(ValueError, match="weight_mean needs one entry per layer"):
        Recipe(weight_mean=[1.0])
    with pytest.raises(ValueError, match="tau_ratio"):
        Recipe(tau_ratio=3.0)
    with pytest.raises(ValueError, match="unknown recipe fields"):
        Recipe.from_dict({"learning_rate": 1})
    with pytest.raises(ValueError, match=r"min_slope must be a finite number in \[0, inf\) or None"):
        Recipe(min_slope=-0.1)
    assert parse_overrides(["min_slope=0.1"]) == {"min_slope": 0.1}
    assert Recipe.from_dict(yy.to_dict()) == yy
    with pytest.raises(ValueError, match="train_on_val=True .* set select_best_val=False"):
        Recipe(train_on_val=True, select_best_val=True)
    assert parse_overrides(["train_on_val=true"]) == {"train_on_val": True}
    assert improved_recipe("mnist16", train_on_val=True, select_best_val=False).train_on_val


@pytest.mark.parametrize("field, value, message", [
    ("input_noise", math.inf, r"input_noise must be a finite number in \[0, inf\)"),
    ("input_noise", math.nan, r"input_noise must be a finite number"),
    ("xi", 0.0, r"xi must be a finite number in \(0, inf\)"),
    ("beta", -1.0, r"beta must be a finite number in \(0, inf\)"),
    ("alpha", math.nan, "alpha must be a finite number"),
    ("silent_loss", math.nan, "silent_loss must be a finite number"),
    ("lr", math.inf, r"lr must be a finite number in \(0, inf\)"),
    ("lr_min", 1.0, r"lr_min must be a finite number in \[0, 0.005\]"),
    ("lr_min", -1e-4, "lr_min must be"),
    ("momentum", 5.0, r"momentum must be a finite number in \[0, 1\)"),
    ("weight_std", [math.nan, 0.8], r"weight_std\[0\] must be a finite number in \[0, inf\)"),
    ("weight_mean", [0.0, math.inf], r"weight_mean\[1\] must be a finite number"),
    ("bias_times", [-3.0, None], r"bias_times\[0\] must be a finite number in \[0, inf\)"),
    ("max_silent_fraction", [0.3, 1.5], r"max_silent_fraction\[1\] must be .* \[0, 1\]"),
    ("hidden", [2.5], "hidden must be a list of layer sizes, integers >= 1"),
    ("hidden", [0], "hidden must be a list of layer sizes"),
    ("bump_value", -1.0, r"bump_value must be a finite number in \[0, inf\)"),
    ("dataset", "", "dataset must be a non-empty name"),
    ("batch_size", 2.5, "batch_size must be an integer >= 1"),
    ("epochs", -1, "epochs must be an integer >= 0"),
    ("seed", True, "seed must be an integer >= 0"),
    ("max_weight_grad", math.nan, r"max_weight_grad must be a finite number in \(0, inf\) or None"),
    ("weight_clip", 0.0, "weight_clip must be"),
    ("t_late", 0.1, r"t_late must be a finite number in \(0.15, inf\)"),
    ("select_best_val", "yes", "select_best_val must be true or false"),
    # a float32 run cannot hold it: torch failed with "value cannot be converted"
    ("silent_loss", 1e300, r"silent_loss must be a finite number in \[0, 1e\+30\]"),
])
def test_every_out_of_range_field_is_named_with_its_range(field, value, message):
    with pytest.raises(ValueError, match=message):
        published_recipe("yinyang").replace(**{field: value})


def test_numpy_scalars_from_a_sweep_are_plain_numbers_and_any_dataset_label_works():
    import json
    recipe = published_recipe("yinyang").replace(
        batch_size=np.int64(100), hidden=[np.int64(40)], lr=np.float32(0.01), xi=np.float64(0.1),
        weight_mean=[np.float32(1.5), 0.5], dataset="my_own_data")
    assert type(recipe.batch_size) is int and type(recipe.hidden[0]) is int
    assert type(recipe.lr) is float and type(recipe.weight_mean[0]) is float
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe


def test_best_validation_weights_are_restored():
    from pynn_ttfs.training.datasets import load_yinyang
    from pynn_ttfs.training.trainer import Trainer
    data = load_yinyang(sizes={"train": 150, "val": 60, "test": 60})
    recipe = improved_recipe("yinyang", batch_size=50, epochs=3)
    assert recipe.select_best_val and not recipe.bump_skips_step and recipe.dtype == "float32"
    trainer = Trainer.for_dataset(recipe, 4, 3)
    snapshots, vals = [], []
    for _ in range(3):
        vals.append(trainer.train_epoch(data.train, val_split=data.val).val_accuracy)
        snapshots.append([layer.weights.detach().clone() for layer in trainer.model.layers])
    best = int(np.argmax(vals))  # first epoch with the best validation accuracy
    assert trainer.use_best_weights() == best + 1
    for layer, expected in zip(trainer.model.layers, snapshots[best]):
        assert torch.equal(layer.weights.detach(), expected)


def test_parse_overrides_reads_json_and_names_bad_fields():
    from pynn_ttfs.training.recipe import parse_overrides
    changes = parse_overrides(["lr=0.005", "lr_schedule=cosine", "hidden=[246]",
                               "weight_clip=null", "epochs=3", "bump_skips_step=false"])
    assert changes == {"lr": 0.005, "lr_schedule": "cosine", "hidden": [246],
                       "weight_clip": None, "epochs": 3, "bump_skips_step": False}
    assert isinstance(parse_overrides(["lr=1"])["lr"], float)
    for bad, words in [("lr", "KEY=VALUE"), ("nope=1", "unknown recipe field 'nope'"),
                       ("epochs=2.5", "'epochs' needs an int"), ("hidden=5", "'hidden' needs a list")]:
        with pytest.raises(ValueError, match=words):
            parse_overrides([bad])


def test_shift_augmentation_moves_whole_images_and_fills_blank():
    from pynn_ttfs.training.datasets import Split
    from pynn_ttfs.training.trainer import Trainer
    recipe = published_recipe("mnist16", hidden=[4], shift_pixels=2, seed=3)
    model = build_model([16, 4, 10], [0.1, 0.6], [0.4, 0.8], [None, None],
                        torch.Generator().manual_seed(0))
    trainer = Trainer(model, recipe)
    images = torch.arange(2 * 16, dtype=torch.float64).reshape(2, 16) + 1.0
    split = Split(np.zeros((2, 16)), images.numpy(), np.zeros(2, np.int64), image_shape=(4, 4),
                  blank_time=math.inf)
    seen = set()
    for _ in range(40):
        shifted = trainer._shifted(images, split).reshape(2, 4, 4)
        for b in range(2):
            original = images[b].reshape(4, 4)
            found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                     if _is_shift(original, shifted[b], dy, dx)]
            assert len(found) == 1, (original, shifted[b])
            seen.add(found[0])
    assert len(seen) > 10  # offsets vary over [-2, 2]^2


def _is_shift(original, shifted, dy, dx):
    """shifted[r, c] == original[r + dy, c + dx] inside the image, inf outside."""
    for r in range(4):
        for c in range(4):
            rr, cc = r + dy, c + dx
            expected = original[rr, cc] if 0 <= rr < 4 and 0 <= cc < 4 else math.inf
            if shifted[r, c] != expected:
                return False
    return True


def test_shift_augmentation_needs_image_data():
    from pynn_ttfs.training.datasets import load_yinyang
    from pynn_ttfs.training.trainer import Trainer
    with pytest.raises(ValueError, match="shift_pixels must be an integer >= 0"):
        published_recipe("mnist16", shift_pixels=-1)
    data = load_yinyang(sizes={"train": 20, "val": 10, "test": 10})
    recipe = published_recipe("yinyang", shift_pixels=1)
    trainer = Trainer.for_dataset(recipe, data.n_inputs, data.n_classes)
    with pytest.raises(ValueError, match="shift_pixels=1 needs image data"):
        trainer.train_epoch(data.train)
    # a shift as large as the image moves it out of the frame (a huge one ran out of memory)
    images = Split(np.zeros((2, 16)), np.ones((2, 16)), np.zeros(2, np.int64), image_shape=(4, 4))
    trainer = Trainer.for_dataset(published_recipe("mnist16", shift_pixels=4), 16, 10)
    with pytest.raises(ValueError, match=r"shift_pixels=4 must be smaller than the image side \(4 pixels\)"):
        trainer.train_epoch(images)


def test_improved_mnist16_recipe_has_the_measured_changes():
    from pynn_ttfs.training.recipe import improved_recipe
    recipe = improved_recipe("mnist16")
    assert (recipe.xi, recipe.batch_size, recipe.lr, recipe.lr_schedule, recipe.epochs) == \
        (0.1, 100, 0.005, "cosine", 150)
    assert published_recipe("mnist16").xi == 0.2  # the published recipe stays as published
    assert improved_recipe("mnist16", xi=0.2, epochs=3).xi == 0.2  # overrides win
    assert improved_recipe("mnist").xi == 0.2  # not measured on 28x28: unchanged


def test_a_checkpoint_loads_only_into_its_own_recipe_and_shapes():
    from pynn_ttfs.training.trainer import Trainer
    recipe = improved_recipe("yinyang", epochs=3)
    state = Trainer.for_dataset(recipe, 4, 3).state_dict()
    Trainer.for_dataset(recipe.replace(epochs=5), 4, 3).load_state_dict(state)  # step schedule
    with pytest.raises(ValueError, match=r"another recipe: lr 0.005 \(now 0.01\)"):
        Trainer.for_dataset(recipe.replace(lr=0.01), 4, 3).load_state_dict(state)
    cosine = recipe.replace(lr_schedule="cosine")
    cosine_state = Trainer.for_dataset(cosine, 4, 3).state_dict()
    with pytest.raises(ValueError, match="cosine schedule decays over 3 epochs"):
        Trainer.for_dataset(cosine.replace(epochs=6), 4, 3).load_state_dict(cosine_state)
    with pytest.raises(ValueError, match=r"weight shapes \[\(5, 120\), \(121, 3\)\] are not"):
        Trainer.for_dataset(recipe, 4, 2).model.load_state_dict(state["model"])


def test_a_checkpoint_with_other_neuron_parameters_is_refused():
    """In-the-loop models take their neuron parameters from the backend: a checkpoint saved
    with others (another chip or setup) must not silently replace them."""
    from pynn_ttfs.training.model import TTFSModel
    from pynn_ttfs.training.trainer import Trainer
    recipe = improved_recipe("yinyang", epochs=3)
    model = Trainer.for_dataset(recipe, 4, 3).model
    state = model.state_dict()
    other = TTFSModel.from_state_dict(state)
    other.load_state_dict(state)  # the same parameters: accepted
    state["threshold"][1] = state["threshold"][1] * 1.05
    with pytest.raises(ValueError, match="layer 1: the saved network's threshold"):
        other.load_state_dict(state)
    state = model.state_dict()
    state["bias_times"][0] = 0.5
    with pytest.raises(ValueError, match="layer 0: the saved network's bias time 0.5"):
        other.load_state_dict(state)
    state = model.state_dict()
    state["delays"] = [0.02, 0.0]
    with pytest.raises(ValueError, match="layer 0: the saved network's delay 0.02"):
        other.load_state_dict(state)


def test_negative_noisy_input_times_are_clamped_or_reflected():
    """input_noise_negative: "clamp" (to 0, this project's runs) or "reflect" (|t|, the
    reference code's apply_noise); the same noise draws either way."""
    from pynn_ttfs.training.datasets import load_yinyang
    from pynn_ttfs.training.trainer import Trainer
    data = load_yinyang(sizes={"train": 60, "val": 10, "test": 10})
    first_batch = {}
    for mode in ("clamp", "reflect"):
        recipe = published_recipe("yinyang", input_noise=1.0, input_noise_negative=mode,
                                  batch_size=60, epochs=1)
        trainer = Trainer.for_dataset(recipe, 4, 3)
        forward = trainer.forward
        seen = []

        class Capturing:
            def __call__(self, inputs):
                seen.append(inputs.clone())
                return forward(inputs)

            def __getattr__(self, name):
                return getattr(forward, name)

        trainer.forward = Capturing()
        trainer.train_epoch(data.train)
        first_batch[mode] = seen[0]
    clamped, reflected = first_batch["clamp"], first_batch["reflect"]
    finite = torch.isfinite(clamped)
    assert (clamped[finite] >= 0).all() and (reflected[finite] >= 0).all()
    at_zero = finite & (clamped == 0)
    assert at_zero.sum() > 10  # sigma 1 tau_s: many noisy times fall below 0
    assert (reflected[at_zero] > 0).all()
    torch.testing.assert_close(reflected[finite & ~at_zero], clamped[finite & ~at_zero])
    with pytest.raises(ValueError, match="input_noise_negative must be 'clamp' or 'reflect'"):
        published_recipe("yinyang", input_noise_negative="mirror")


@pytest.mark.parametrize("where", ["bumped", "forward"])
def test_a_bumped_batch_steps_with_the_gradient_at_the_chosen_weights(where):
    """bump_skips_step=False: a bumped batch adds the bump and takes a gradient step, the
    gradient evaluated at the bumped weights ("bumped") or at the weights the batch ran
    with, the exact gradient of its recorded times ("forward"). Plain SGD, so the step is
    w_after = w_before + bump - lr * gradient, with the gradient known exactly."""
    from pynn_ttfs.training.datasets import load_yinyang
    from pynn_ttfs.training.trainer import Trainer
    data = load_yinyang(sizes={"train": 80, "val": 10, "test": 10})
    recipe = published_recipe("yinyang", optimizer="sgd", momentum=0.0, lr=0.1,
                              max_weight_grad=None, bump_skips_step=False,
                              bump_gradient_weights=where)
    trainer = Trainer.for_dataset(recipe, 4, 3)
    layers = trainer.model.layers
    with torch.no_grad():
        for layer in layers:
            layer.weights.mul_(0.3)  # weak weights: silent neurons, so the batch bumps
    inputs = torch.as_tensor(data.train.times)
    labels = torch.as_tensor(data.train.labels)
    layer_times = trainer.forward(inputs)
    before = [layer.weights.detach().clone() for layer in layers]
    _, at_forward, _ = trainer.step.gradients(inputs, layer_times, labels)
    result = trainer.step(inputs, layer_times, labels)
    after = [layer.weights.detach().clone() for layer in layers]
    assert result.bumped_layer is not None
    bumps = [torch.zeros_like(w) for w in before]
    silent = ~torch.isfinite(layer_times[result.bumped_layer])
    bumps[result.bumped_layer] += recipe.bump_value * silent.any(dim=0).to(before[0].dtype)[None, :]
    assert bumps[result.bumped_layer].abs().sum() > 0
    with torch.no_grad():  # the gradient at the bumped weights, for comparison
        for layer, w, bump in zip(layers, before, bumps):
            layer.weights.copy_(w + bump)
    _, at_bumped, _ = trainer.step.gradients(inputs, layer_times, labels)
    assert any(not torch.allclose(a, b) for a, b in zip(at_forward, at_bumped))  # the bump moves it
    expected = at_forward if where == "forward" else at_bumped
    for w_after, w, bump, g in zip(after, before, bumps, expected):
        torch.testing.assert_close(w_after, w + bump - recipe.lr * g, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="bump_gradient_weights must be 'bumped' or 'forward'"):
        recipe.replace(bump_gradient_weights="after")


def test_loss_and_predictions_refuse_nan_and_minus_inf_and_bad_labels():
    """A NaN time used to count as silent (loss) or win (predict); -inf won too."""
    loss = TTFSLoss()
    labels = torch.tensor([0])
    for bad, match in ((math.nan, "times contains NaN"), (-math.inf, "times contains -inf")):
        times = torch.tensor([[0.5, bad, 2.0]])
        with pytest.raises(ValueError, match=match):
            loss(times, labels)
        with pytest.raises(ValueError, match=match):
            predict(times)
        with pytest.raises(ValueError, match=match):
            correct(times, labels)
    good = torch.tensor([[0.5, math.inf, 2.0]])
    assert predict(good).tolist() == [0] and torch.isfinite(loss(good, labels))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\].*got \[3, 3\]"):
        loss(good, torch.tensor([3]))
    with pytest.raises(ValueError, match=r"labels must be integers of shape \(batch,\) = \(1,\)"):
        loss(good, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="batch 0"):
        loss(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    assert loss.per_sample(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)).shape == (0,)
    # True would have counted as class 1
    with pytest.raises(ValueError, match=r"labels must be integers .* got torch.bool"):
        loss(good, torch.tensor([True]))
    with pytest.raises(ValueError, match=r"no output neurons"):
        predict(torch.zeros(2, 0))


@pytest.mark.parametrize("field, value, message", [
    ("alpha", math.nan, r"alpha must be a finite number in \[0, inf\), got nan"),
    ("silent_loss", math.nan, r"silent_loss must be a finite number in \[0, 1e\+30\]"),
    ("silent_loss", -5.0, r"silent_loss must be a finite number in \[0, 1e\+30\], got -5.0"),
    ("xi", math.inf, r"xi must be a finite number in \(0, inf\), got inf"),
    ("beta", "1.0", r"beta must be a finite number in \(0, inf\), got '1.0'"),
])
def test_loss_settings_are_checked_as_the_recipe_checks_them(field, value, message):
    """NaN alpha or silent_loss gave a NaN loss, a negative silent_loss a negative one."""
    with pytest.raises(ValueError, match=message):
        TTFSLoss(**{field: value})


def test_a_damaged_checkpoint_leaves_the_trainer_as_it_was():
    """Trainer.load_state_dict is all or nothing: a part failing late (the optimizer, an
    RNG state) used to leave epoch, weights and global RNGs already replaced."""
    from pynn_ttfs.training.datasets import load_yinyang
    from pynn_ttfs.training.trainer import Trainer
    data = load_yinyang(sizes={"train": 50, "val": 10, "test": 10})
    recipe = published_recipe("yinyang", batch_size=50, epochs=3)
    source = Trainer.for_dataset(recipe, 4, 3)
    source.train_epoch(data.train)
    good = source.state_dict()
    target = Trainer.for_dataset(recipe.replace(seed=1), 4, 3)
    target.recipe = recipe  # same recipe, other weights
    before = [layer.weights.detach().clone() for layer in target.model.layers]
    rng_before = torch.get_rng_state().clone()
    for damage, match in [
        (lambda s: s.update(step={"optimizer": {"state": {}, "param_groups": []}}), "cannot be loaded"),
        (lambda s: s.update(generator=torch.zeros(3, dtype=torch.uint8)), "cannot be loaded"),
        (lambda s: s.pop("history"), "lacks history"),
        (lambda s: s.update(epoch="x"), "epoch must be an integer >= 0"),
        (lambda s: s["model"].update(weights=[w * math.nan for w in s["model"]["weights"]]),
         "weights contain NaN or inf"),
    ]:
        state = copy.deepcopy(good)
        damage(state)
        with pytest.raises(ValueError, match=match):
            target.load_state_dict(state)
        assert target.epoch == 0 and target.history == []
        for layer, w in zip(target.model.layers, before):
            assert torch.equal(layer.weights.detach(), w)
        assert torch.equal(torch.get_rng_state(), rng_before)
    with pytest.raises(ValueError, match="a checkpoint is the dict"):
        target.load_state_dict([1, 2])
    target.load_state_dict(good)
    assert target.epoch == 1


def test_a_network_and_a_recipe_of_different_depth_or_inputs_are_named():
    """A 3-layer network with a 2-layer recipe failed with an IndexError in the bumping (a
    1-layer network took the hidden layer's max_silent_fraction for its output layer)."""
    from pynn_ttfs.training.datasets import load_yinyang
    from pynn_ttfs.training.trainer import Trainer
    data = load_yinyang(sizes={"train": 20, "val": 10, "test": 10})
    generator = torch.Generator().manual_seed(0)
    deep = build_model([4, 10, 10, 3], [1.5, 0.5, 0.5], [0.8, 0.8, 0.8], [0.9, 0.9, 0.9],
                       generator, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"the recipe describes 2 layers \(hidden=\[120\].* the "
                                         r"network has 3 \(sizes \[4, 10, 10, 3\]\)"):
        Trainer(deep, improved_recipe("yinyang", batch_size=10))
    Trainer(deep, improved_recipe("yinyang", batch_size=10, hidden=[10, 10], bias_times=[0.9] * 3,
                                  weight_mean=[1.5, 0.5, 0.5], weight_std=[0.8] * 3,
                                  max_silent_fraction=[0.3, 0.3, 0.0])).train_epoch(data.train)
    # five features for a network that takes four (the count included the bias column)
    trainer = Trainer.for_dataset(improved_recipe("yinyang", batch_size=10), 5, 3)
    with pytest.raises(ValueError, match="the split has 4 input features per sample but the network takes 5"):
        trainer.train_epoch(data.train)
    with pytest.raises(ValueError, match="the split has 4 input features per sample but the network takes 5"):
        trainer.evaluate(data.test)
