"""Item import (DESIGN.md: File formats). formats.py reads files (csvfile.py their CSV rows,
records.py what the readers share), attributes.py HelpSteer-style files (one row per response,
grouped into items by prompt), service.py writes items, survey.py looks at a file before it is
imported (its K range)."""
from annotation.importers.formats import FORMATS, LineError, ParsedItem, parse_record, stable_id, transcript_messages
from annotation.importers.service import (
    MAX_ERRORS,
    ImportFailed,
    import_batch_run,
    import_path,
    import_records,
    import_stream,
    import_upload,
)
from annotation.importers.survey import response_counts

__all__ = [
    "FORMATS",
    "MAX_ERRORS",
    "ImportFailed",
    "LineError",
    "ParsedItem",
    "import_batch_run",
    "import_path",
    "import_records",
    "import_stream",
    "import_upload",
    "parse_record",
    "response_counts",
    "stable_id",
    "transcript_messages",
]
