#!/usr/bin/env bash
# Kaldi-compatible entry point; the implementation and its documentation: pyscripts/utils/copy_data_dir.py (--help).
exec python3 "$(dirname "$(readlink -f "$0")")/../pyscripts/utils/copy_data_dir.py" "$@"
