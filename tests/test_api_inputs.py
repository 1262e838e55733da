"""The scripting API refuses bad arguments as a problem file does (ProblemError naming the
argument, the value and the allowed range), and says what actually ran where the neural demag
falls back to the exact FFT. Found by a new user's pass through README's Scripting API."""
import math
import warnings

import h5py
import numpy as np
import pytest
import torch

from engine import Mesh, Problem, ShapeOp, Simulation, SolverSpec
from engine.errors import ProblemError
from engine.fft_backends import choose_backend
from engine.neural.weights import WeightsError, build_net, safe_load
from engine.results import ResultWriter, read_results


def _sim(n=(16, 8, 1), demag="none", **solver):
    return Simulation(Problem(mesh=Mesh(n, (5.0, 5.0, 3.0)), solver=SolverSpec(demag=demag, **solver)))


@pytest.mark.parametrize("B, ac, key", [
    ([1, 2], None, "field.B_mT"),
    ("x", None, "field.B_mT"),
    ([0, 0, float("nan")], None, "field.B_mT[2]"),
    ([0, 0, 0], {"kind": "sinus", "amplitude_mT": [10, 0, 0]}, "field.ac.kind"),
    ([0, 0, 0], {"kind": "sine", "amplitude_mT": [10, 0, 0]}, "field.ac.frequency_GHz"),
    ([0, 0, 0], {"kind": "pulse", "amplitude_mT": [1, 0, 0], "width_ns": 1, "widht_ns": 2}, "field.ac.widht_ns"),
])
def test_set_applied_field_checks_like_a_problem_file(B, ac, key):
    sim = _sim()
    before = (tuple(sim.problem.field.B_mT), dict(sim.problem.field.ac))
    with pytest.raises(ProblemError) as e:
        sim.set_applied_field(B, ac)
    assert e.value.key == key
    assert (tuple(sim.problem.field.B_mT), dict(sim.problem.field.ac)) == before   # nothing changed


def test_set_applied_field_takes_a_good_field_in_mT_and_keeps_the_ac_part_when_none():
    sim = _sim()
    ac = {"kind": "sine", "amplitude_mT": [0, 4.0, 0], "frequency_GHz": 1.0}
    sim.set_applied_field([1.0, 0, 0], ac)
    np.testing.assert_allclose(sim.zeeman.applied.B_mT(0.25e-9), [1.0, 4.0, 0.0], atol=1e-12)
    sim.set_applied_field((2.0, 0, 0))          # ac=None: the sine stays
    assert sim.problem.field.ac["kind"] == "sine" and sim.problem.field.B_mT == (2.0, 0.0, 0.0)
    np.testing.assert_allclose(sim.zeeman.applied.B_mT(0.25e-9), [2.0, 4.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("call, key", [
    (lambda s: s.run(-1e-12), "duration (s)"),
    (lambda s: s.run(float("nan")), "duration (s)"),
    (lambda s: s.run("1e-12"), "duration (s)"),
    (lambda s: s.relax(torque=-1), "torque"),
    (lambda s: s.relax(max_steps=0), "max_steps"),
    (lambda s: s.set_alpha(-1), "alpha"),
])
def test_run_relax_and_alpha_refuse_bad_values(call, key):
    sim = _sim()
    with pytest.raises(ProblemError) as e:
        call(sim)
    assert e.value.key == key
    assert sim.t == 0.0 and sim.steps == 0


def test_relax_max_steps_none_means_the_default():
    res = _sim().relax(torque=1e-2, max_steps=None)
    assert res["steps"] >= 0 and math.isfinite(res["max_torque"])


def test_zero_magnetisation_in_the_magnet_is_refused_but_allowed_in_vacuum():
    p = Problem(mesh=Mesh((16, 16, 1), (5.0, 5.0, 3.0)), solver=SolverSpec(demag="none"),
                geometry=[ShapeOp(shape="ellipse", params={"center_nm": [0.0, 0.0], "radii_nm": [30.0, 30.0]})])
    sim = Simulation(p)
    with pytest.raises(ProblemError) as e:
        sim.set_m(np.zeros((3, 1, 16, 16)))
    assert "magnet cell" in str(e.value) and e.value.key == "initial state"
    m = np.zeros((3, 1, 16, 16))
    m[0][0][sim.mask[0]] = 1.0                    # zero only in the vacuum around the disk
    sim.set_m(m)
    np.testing.assert_allclose(sim.mean_m(), [1.0, 0.0, 0.0])
    with pytest.raises(ProblemError):
        Simulation(p, m0=np.zeros((3, 1, 16, 16)))


def test_a_changed_grid_in_update_problem_is_a_problem_error():
    sim = _sim()
    p = sim.problem.copy()
    p.mesh.n = (8, 8, 1)
    with pytest.raises(ProblemError) as e:
        sim.update_problem(p)
    assert e.value.key == "mesh"


def test_neural_outside_the_card_runs_the_problems_fft_backend_and_says_fft_where_it_ran(tmp_path):
    n = (16, 8, 5)                                 # five layers: outside the card
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim = _sim(n, demag="neural+probe", fft="torch")
    ours = [w for w in caught if "outside the model card" in str(w.message)]
    assert ours and ours[0].filename == __file__   # attributed to the line that built it
    assert sim.demag.fallback.backend == "torch"
    assert sim.demag.exact().backend == "torch"
    assert sim.demag_in_use == "fft" and sim.frame().demag_method == "fft"
    sim.demag.probe_every = 1
    sim.step()
    assert sim.demag.last_probe is None            # no network runs: nothing to probe
    with ResultWriter(tmp_path / "r.h5", sim.problem, sim.regions, sim.demag_in_use) as w:
        w.set_final_state(sim.m, sim.t)
    res = read_results(tmp_path / "r.h5")
    assert res["demag_in_use"] == "fft" and res["problem"].solver.demag == "neural+probe"


def test_results_without_the_attribute_read_as_the_problems_demag(tmp_path):
    sim = _sim()
    with ResultWriter(tmp_path / "r.h5", sim.problem, sim.regions) as w:
        w.set_final_state(sim.m, sim.t)
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert "demag_in_use" not in f.attrs
    assert read_results(tmp_path / "r.h5")["demag_in_use"] == "none"


def test_a_misspelt_NMAG_FFT_warns_instead_of_being_ignored(monkeypatch):
    monkeypatch.setenv("NMAG_FFT", "fftww")
    with pytest.warns(UserWarning, match="NMAG_FFT='fftww' is not an FFT backend"):
        choose_backend((8, 8, 1), (16, 16, 1), torch.float64)


def test_NMAG_FFT_takes_a_forward_inverse_pair(monkeypatch):
    monkeypatch.setenv("NMAG_FFT", "torch+scipy")
    pipe, how = choose_backend((8, 8, 1), (16, 16, 1), torch.float64)
    assert how == "forced"


def test_the_solver_fft_message_names_pairs_and_layouts():
    with pytest.raises(ProblemError) as e:
        Problem(solver=SolverSpec(fft="mkl")).validate()
    assert "forward+inverse" in str(e.value) and "'auto'" in str(e.value)


def test_weights_refusals_never_advise_loading_unsafely(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))
    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(WeightsError) as e:
        safe_load(path)
    assert "weights_only" not in str(e.value) and "system" in str(e.value)


def test_a_weights_config_with_an_unknown_key_is_a_weights_error():
    with pytest.raises(WeightsError, match="unknown key.*'bogus'"):
        build_net({"arch": "lean", "bogus": 1})
    with pytest.raises(WeightsError, match="stem 3"):
        build_net({"arch": "lean", "stem": 3})


def test_non_square_cells_are_named_by_their_ratio_in_any_unit():
    from engine.neural.card import ModelCard
    card = ModelCard.load()
    in_m = card.outside((32, 32, 1), (3e-9, 4e-9, 3e-9))
    in_nm = card.outside((32, 32, 1), (3.0, 4.0, 3.0))
    assert any("dy/dx = 1.333" in r for r in in_m) and in_m == in_nm


def test_a_rounding_sized_negative_duration_is_nothing_to_do():
    sim = _sim()
    sim.run(2e-12)
    t = sim.t
    sim.run((t - 1e-24) - t)                        # what target - t can give after rounding
    assert sim.t == t
