"""Dataset snapshots: immutable, versioned folders of preference data (DESIGN.md: File formats).

- options.py   every build option with its default
- services.py  snapshot_create: the row, the next version number, enqueue after commit
- build.py     snapshot_build: judgments -> formats, card, manifest; atomic rename
- formats.py   every format as JSONL + Parquet, streamed
- answers.py   the answers to a project's questions as rows: attributes (HelpSteer2's layout), labels
- split.py     train/test by prompt
- card.py      README.md dataset card
- download.py  one file, or the whole folder as a streamed tar.gz

Nothing here imports pyarrow, crowd-kit or pandas at module level: the web process stays light.
"""
from annotation.exports.options import OptionsError, SnapshotOptions
from annotation.exports.services import snapshot_create

__all__ = ["OptionsError", "SnapshotOptions", "snapshot_create"]
