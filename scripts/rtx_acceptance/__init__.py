"""Acceptance run for RTX owners: see scripts/rtx_acceptance.sh and the README."""
