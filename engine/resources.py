"""Where the project's resources/ folder (presets, weights, examples) lies."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
EXAMPLES = ROOT / "examples"


def resource_path(name: str) -> Path:
    """Path of a file under resources/."""
    return RESOURCES / name
