"""Job ad -> JobRequest: the submit ClassAd of BLAH_JOB_SUBMIT, typed and validated (no I/O)."""

from __future__ import annotations

from kgahp.jobad.parse import parse_output_remaps, parse_submit_ad

__all__ = ["parse_output_remaps", "parse_submit_ad"]
