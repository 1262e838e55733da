"""benchmarks.machine: the CPU and cache description stored with benchmark results."""
from benchmarks.machine import caches, cpu_info, describe

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 167
model name\t: Intel(R) Xeon(R) Processor
stepping\t: 1
cpu MHz\t\t: 2600.000

processor\t: 1
model name\t: another one
"""


def test_cpu_info_reads_the_first_processor_only():
    assert cpu_info(CPUINFO) == {"family": "6", "model": "167", "model_name": "Intel(R) Xeon(R) Processor",
                                 "stepping": "1", "mhz": "2600.000"}


def test_caches_name_each_level_and_kind(tmp_path):
    for i, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "64K"), (2, "Unified", "2048K"),
                                             (3, "Unified", "491520K")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    (tmp_path / "index9").mkdir()   # unreadable entries are skipped
    assert caches(tmp_path) == {"L1d": "48K", "L1i": "64K", "L2": "2048K", "L3": "491520K"}


def test_describe_this_machine():
    info = describe()
    assert info["cores"] >= 1 and isinstance(info["caches"], dict)
