#!/usr/bin/env bash
# Usage: scripts/utils/perturb_data_dir_speed.sh <factor> <src-dir> <dest-dir>
# The implementation and its documentation: pyscripts/utils/perturb_data_dir_speed.py (--help).
exec python3 "$(dirname "$(readlink -f "$0")")/../../pyscripts/utils/perturb_data_dir_speed.py" "$@"
