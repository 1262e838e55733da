"""OVF 2.0 writing and reading (engine.ovf), checked against the format as physics.md states it."""
import struct

import numpy as np
import pytest

from engine.errors import ProblemError
from engine.ovf import read_ovf, write_ovf

CELL = (5e-9, 5e-9, 3e-9)


def _random_m(shape=(2, 3, 4), seed=0):
    """Unit vectors (3, nz, ny, nx), float64."""
    m = np.random.default_rng(seed).normal(size=(3,) + shape)
    return m / np.linalg.norm(m, axis=0)


def _indexed_field(nz, ny, nx):
    """m[c, z, y, x] = c + 10 x + 100 y + 1000 z, so the file order can be read off the values."""
    c, z, y, x = np.meshgrid(np.arange(3), np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    return (c + 10 * x + 100 * y + 1000 * z).astype(np.float64)


def _data_start(raw: bytes, fmt: bytes) -> int:
    marker = b"# Begin: Data " + fmt + b"\n"
    assert raw.count(marker) == 1
    return raw.index(marker) + len(marker)


# --------------------------------------------------------------------------- round trips
def test_binary4_round_trip_equals_float32_values(tmp_path):
    m = _random_m()
    write_ovf(tmp_path / "m.ovf", m, CELL, mode="binary4", t=1.5e-10)
    back, meta = read_ovf(tmp_path / "m.ovf")
    assert back.dtype == np.float32 and back.shape == (3, 2, 3, 4)
    np.testing.assert_array_equal(back, m.astype(np.float32))
    assert meta["n"] == (4, 3, 2)
    assert meta["cell_m"] == CELL
    assert meta["valuedim"] == 3
    assert meta["t"] == 1.5e-10
    assert meta["title"] == "m"
    assert meta["version"] == 2 and meta["data_format"] == "binary 4"


def test_binary8_round_trip_is_exact(tmp_path):
    m = _random_m(seed=1)
    write_ovf(tmp_path / "m.ovf", m, CELL, mode="binary8", title="magnetization", desc="two\nlines")
    back, meta = read_ovf(tmp_path / "m.ovf")
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, m)
    assert meta["title"] == "magnetization"
    assert meta["desc"] == "two\nlines"
    assert meta["t"] is None


def test_text_round_trip_is_exact_with_17_digits(tmp_path):
    m = _random_m(seed=2)
    write_ovf(tmp_path / "m.ovf", m, CELL, mode="text", t=2e-9)
    back, meta = read_ovf(tmp_path / "m.ovf")
    np.testing.assert_array_equal(back, m)
    assert meta["data_format"] == "text" and meta["t"] == 2e-9


def test_text_lines_hold_one_cell_each_x_fastest(tmp_path):
    write_ovf(tmp_path / "m.ovf", _indexed_field(2, 2, 3), CELL, mode="text")
    raw = (tmp_path / "m.ovf").read_bytes()
    body = raw[_data_start(raw, b"Text"):].decode().splitlines()
    assert [float(v) for v in body[0].split()] == [0, 1, 2]
    assert [float(v) for v in body[1].split()] == [10, 11, 12]       # next x
    assert [float(v) for v in body[3].split()] == [100, 101, 102]    # next y after 3 x
    assert [float(v) for v in body[6].split()] == [1000, 1001, 1002]  # next z after 2 y
    assert body[12:] == ["# End: Data Text", "# End: Segment"]


def test_torch_tensor_is_accepted(tmp_path):
    torch = pytest.importorskip("torch")
    m = _random_m()
    write_ovf(tmp_path / "m.ovf", torch.from_numpy(m).float(), CELL)
    back, _ = read_ovf(tmp_path / "m.ovf")
    np.testing.assert_array_equal(back, m.astype(np.float32))


def test_scalar_field_has_valuedim_1_and_shape_1_nz_ny_nx(tmp_path):
    s = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    write_ovf(tmp_path / "s.ovf", s, CELL, mode="binary8", title="Edens", valueunits=("J/m3",))
    back, meta = read_ovf(tmp_path / "s.ovf")
    assert back.shape == (1, 2, 3, 4)
    np.testing.assert_array_equal(back[0], s)
    assert meta["valuedim"] == 1
    assert meta["valuelabels"] == ("Edens",)
    assert meta["valueunits"] == ("J/m3",)


# --------------------------------------------------------------------------- the bytes
def test_header_is_ovf2_as_physics_md_states(tmp_path):
    write_ovf(tmp_path / "m.ovf", _random_m((1, 2, 3)), CELL, t=1e-9)
    raw = (tmp_path / "m.ovf").read_bytes()
    header = raw[:_data_start(raw, b"Binary 4")].decode("ascii").splitlines()
    assert header == [
        "# OOMMF OVF 2.0",
        "# Segment count: 1",
        "# Begin: Segment",
        "# Begin: Header",
        "# Title: m",
        "# meshtype: rectangular",
        "# meshunit: m",
        "# xmin: 0",
        "# ymin: 0",
        "# zmin: 0",
        "# xmax: 1.5e-08",
        "# ymax: 1e-08",
        "# zmax: 3e-09",
        "# valuedim: 3",
        "# valuelabels: m_x m_y m_z",
        "# valueunits: 1 1 1",
        "# Desc: Total simulation time: 1e-09 s",
        "# xbase: 2.5e-09",
        "# ybase: 2.5e-09",
        "# zbase: 1.5e-09",
        "# xnodes: 3",
        "# ynodes: 2",
        "# znodes: 1",
        "# xstepsize: 5e-09",
        "# ystepsize: 5e-09",
        "# zstepsize: 3e-09",
        "# End: Header",
        "# Begin: Data Binary 4",
    ]


def test_binary4_check_value_bytes_and_cell_order(tmp_path):
    nz, ny, nx = 2, 2, 3
    write_ovf(tmp_path / "m.ovf", _indexed_field(nz, ny, nx), CELL, mode="binary4")
    raw = (tmp_path / "m.ovf").read_bytes()
    start = _data_start(raw, b"Binary 4")
    assert raw[start:start + 4] == bytes([0x38, 0xB4, 0x96, 0x49])
    count = 3 * nx * ny * nz
    values = struct.unpack(f"<{count}f", raw[start + 4:start + 4 + 4 * count])
    expected = [c + 10 * x + 100 * y + 1000 * z
                for z in range(nz) for y in range(ny) for x in range(nx) for c in range(3)]
    assert list(values) == expected
    assert raw[start + 4 + 4 * count:] == b"\n# End: Data Binary 4\n# End: Segment\n"


def test_binary8_check_value_bytes(tmp_path):
    write_ovf(tmp_path / "m.ovf", _indexed_field(1, 1, 2), CELL, mode="binary8")
    raw = (tmp_path / "m.ovf").read_bytes()
    start = _data_start(raw, b"Binary 8")
    assert raw[start:start + 8] == bytes([0x40, 0xDE, 0x77, 0x83, 0x21, 0x12, 0xDC, 0x42])
    assert struct.unpack("<6d", raw[start + 8:start + 56]) == (0, 1, 2, 10, 11, 12)
    assert raw.endswith(b"# End: Data Binary 8\n# End: Segment\n")


# --------------------------------------------------------------------------- other writers' files
def test_reads_hand_written_ovf1_big_endian_file(tmp_path):
    nx, ny, nz = 3, 2, 1
    field = _indexed_field(nz, ny, nx)
    values = [field[c, z, y, x] for z in range(nz) for y in range(ny) for x in range(nx) for c in range(3)]
    header = "\n".join([
        "# OOMMF: rectangular mesh v1.0",
        "# Segment count: 1",
        "# Begin: Segment",
        "# Begin: Header",
        "# Title: Oxs_Demag::Field",
        "# Desc: Iteration: 25, State id: 7",
        "# Desc: Time (s): 2.5e-10",
        "# meshtype: rectangular",
        "# meshunit: nm",
        "# xbase: 2.5",
        "# ybase: 2.5",
        "# zbase: 1.5",
        "# xstepsize: 5",
        "# ystepsize: 5",
        "# zstepsize: 3",
        "# xnodes: 3",
        "# ynodes: 2",
        "# znodes: 1",
        "# xmin: 0",
        "# ymin: 0",
        "# zmin: 0",
        "# xmax: 15",
        "# ymax: 10",
        "# zmax: 3",
        "# valueunit: A/m",
        "# valuemultiplier: 2",
        "# boundary: 0 0 0 15 10 3 0 0 0 0 0 0",
        "# ValueRangeMinMag: 1e-8",
        "# ValueRangeMaxMag: 1000",
        "# End: Header",
        "# Begin: Data Binary 4",
        ""]).encode()
    data = struct.pack(">f", 1234567.0) + struct.pack(f">{len(values)}f", *values)
    (tmp_path / "old.ovf").write_bytes(header + data + b"\n# End: Data Binary 4\n# End: Segment\n")

    back, meta = read_ovf(tmp_path / "old.ovf")
    assert meta["version"] == 1
    assert meta["n"] == (3, 2, 1) and meta["valuedim"] == 3
    assert meta["cell_m"] == pytest.approx((5e-9, 5e-9, 3e-9), rel=1e-15)   # nm -> m
    assert meta["t"] == 2.5e-10
    np.testing.assert_array_equal(back, 2 * field)                          # valuemultiplier


def test_reads_hand_written_ovf1_text_file(tmp_path):
    text = ("# OOMMF: rectangular mesh v1.0\n# Segment count: 1\n# Begin: Segment\n# Begin: Header\n"
            "# meshunit: m\n# xstepsize: 1e-9\n# ystepsize: 1e-9\n# zstepsize: 1e-9\n"
            "# xnodes: 2\n# ynodes: 1\n# znodes: 1\n# End: Header\n# Begin: Data Text\n"
            "1 0 0\n0 1 0\n# End: Data Text\n# End: Segment\n")
    (tmp_path / "t.omf").write_text(text)
    back, meta = read_ovf(tmp_path / "t.omf")
    np.testing.assert_array_equal(back[:, 0, 0, :], [[1, 0], [0, 1], [0, 0]])


def test_keys_and_data_line_in_any_case(tmp_path):
    m = _random_m()
    write_ovf(tmp_path / "m.ovf", m, CELL, t=3e-12)
    raw = (tmp_path / "m.ovf").read_bytes()
    start = _data_start(raw, b"Binary 4")
    header = raw[:start].decode()
    header = header.replace("# Begin: Data Binary 4", "# begin: data binary 4")
    header = header.replace("# xnodes:", "# XNODES:").replace("# valuedim:", "# ValueDim:")
    header = header.replace("# Desc: Total simulation time: 3e-12 s", "# desc: total simulation time:  3e-12  s")
    (tmp_path / "lower.ovf").write_bytes(header.encode() + raw[start:].replace(b"Data Binary", b"data binary"))
    back, meta = read_ovf(tmp_path / "lower.ovf")
    np.testing.assert_array_equal(back, m.astype(np.float32))
    assert meta["t"] == 3e-12 and meta["n"] == (4, 3, 2)


def test_mumax3_style_end_line_directly_after_the_data(tmp_path):
    m = _random_m()
    write_ovf(tmp_path / "m.ovf", m, CELL)
    raw = (tmp_path / "m.ovf").read_bytes()
    (tmp_path / "mx3.ovf").write_bytes(raw.replace(b"\n# End: Data Binary 4", b"# End: Data Binary 4"))
    back, _ = read_ovf(tmp_path / "mx3.ovf")
    np.testing.assert_array_equal(back, m.astype(np.float32))


# --------------------------------------------------------------------------- bad files
def test_corrupted_check_value_raises_problem_error(tmp_path):
    write_ovf(tmp_path / "m.ovf", _random_m(), CELL)
    raw = bytearray((tmp_path / "m.ovf").read_bytes())
    raw[_data_start(bytes(raw), b"Binary 4")] ^= 0xFF
    (tmp_path / "bad.ovf").write_bytes(bytes(raw))
    with pytest.raises(ProblemError) as e:
        read_ovf(tmp_path / "bad.ovf")
    assert e.value.key == "ovf file"
    assert "check value" in str(e.value) and "1234567.0" in str(e.value)


def test_big_endian_check_value_in_an_ovf2_file_is_named(tmp_path):
    write_ovf(tmp_path / "m.ovf", _random_m(), CELL)
    raw = bytearray((tmp_path / "m.ovf").read_bytes())
    start = _data_start(bytes(raw), b"Binary 4")
    raw[start:start + 4] = struct.pack(">f", 1234567.0)
    (tmp_path / "bad.ovf").write_bytes(bytes(raw))
    with pytest.raises(ProblemError, match="other byte order"):
        read_ovf(tmp_path / "bad.ovf")


def test_truncated_data_raises_problem_error(tmp_path):
    write_ovf(tmp_path / "m.ovf", _random_m(), CELL, mode="binary8")
    raw = (tmp_path / "m.ovf").read_bytes()
    (tmp_path / "short.ovf").write_bytes(raw[:_data_start(raw, b"Binary 8") + 8 + 40])
    with pytest.raises(ProblemError, match="truncated"):
        read_ovf(tmp_path / "short.ovf")


def test_truncated_text_data_raises_problem_error(tmp_path):
    write_ovf(tmp_path / "m.ovf", _random_m(), CELL, mode="text")
    text = (tmp_path / "m.ovf").read_text().splitlines()
    (tmp_path / "short.ovf").write_text("\n".join(text[:-8]) + "\n")
    with pytest.raises(ProblemError, match="truncated"):
        read_ovf(tmp_path / "short.ovf")


def test_missing_header_key_is_named(tmp_path):
    write_ovf(tmp_path / "m.ovf", _random_m(), CELL)
    raw = (tmp_path / "m.ovf").read_bytes().replace(b"# ynodes: 3\n", b"")
    (tmp_path / "bad.ovf").write_bytes(raw)
    with pytest.raises(ProblemError, match="ynodes"):
        read_ovf(tmp_path / "bad.ovf")


def test_not_an_ovf_file_and_missing_file(tmp_path):
    (tmp_path / "x.ovf").write_text("hello\n")
    with pytest.raises(ProblemError, match="first line"):
        read_ovf(tmp_path / "x.ovf")
    with pytest.raises(ProblemError, match="an existing OVF file"):
        read_ovf(tmp_path / "nothing.ovf")


# --------------------------------------------------------------------------- atomic writing
def test_write_leaves_no_temporary_file_and_replaces_old_file(tmp_path):
    write_ovf(tmp_path / "m.ovf", _random_m(seed=3), CELL)
    m = _random_m(seed=4)
    write_ovf(tmp_path / "m.ovf", m, CELL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ovf"]
    np.testing.assert_array_equal(read_ovf(tmp_path / "m.ovf")[0], m.astype(np.float32))


def test_bad_arguments_leave_the_old_file_alone(tmp_path):
    m = _random_m()
    write_ovf(tmp_path / "m.ovf", m, CELL)
    with pytest.raises(ValueError):
        write_ovf(tmp_path / "m.ovf", m, CELL, mode="binary2")
    with pytest.raises(ValueError):
        write_ovf(tmp_path / "m.ovf", m[:, 0, 0], CELL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ovf"]
    np.testing.assert_array_equal(read_ovf(tmp_path / "m.ovf")[0], m.astype(np.float32))
