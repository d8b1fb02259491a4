# Parse "--long_name value" / "--long_name=value" options into shell variables.
#
# Source this file *after* setting the defaults of every option as shell variables:
#
#     nj=32            # The number of parallel jobs.
#     help_message="Usage: $0 [options] <data-dir>"
#     . utils/parse_options.sh
#
# - "--some-name" and "--some_name" both set the variable "some_name", which must already exist;
#   an unknown option is an error (so typos are caught).
# - If the default of a variable is "true" or "false", the new value must be "true" or "false" too.
# - "--config FILE" sources FILE (lines like "nj=4"; comments allowed) before the remaining options.
# - "--help" or "-h" prints "${help_message}" (which normally embeds the current defaults) and exits 0.
# Options stop at "--" or at the first argument that does not start with "--"; the rest stay in "$@".

# First pass: source "--config FILE" among the options (not in the arguments after them).
__argpos=1
while [ "${__argpos}" -lt $# ]; do
    __arg="${!__argpos}"
    case "${__arg}" in
        --) break ;;
        --*=*) __argpos=$((__argpos + 1)); continue ;;
        --*) ;;
        *) break ;;
    esac
    __next=$((__argpos + 1))
    if [ "${__arg}" = "--config" ]; then
        __config="${!__next}"
        if [ ! -r "${__config}" ]; then
            echo "$0: --config ${__config}: no such readable file" 1>&2
            exit 1
        fi
        # shellcheck disable=SC1090
        . "${__config}"
    fi
    __argpos=$((__next + 1))
done
unset __argpos __arg __next __config

while [ $# -gt 0 ]; do
    case "$1" in
        --help | -h)
            if [ -n "${help_message:-}" ]; then
                printf '%s\n' "${help_message}"
            else
                echo "$0: no help message is defined for this script" 1>&2
            fi
            exit 0
            ;;
        --)
            break
            ;;
        --config)
            # Already sourced above, so that command-line options take precedence over the file.
            shift 2
            ;;
        --*=*)
            __name="${1%%=*}"
            __value="${1#*=}"
            shift
            set -- "${__name}" "${__value}" "$@"
            continue
            ;;
        --*)
            __name=$(echo "${1#--}" | sed 's/-/_/g')
            if [ -z "${__name}" ] || ! [[ "${__name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
                echo "$0: invalid option name '$1'" 1>&2
                exit 1
            fi
            if [ -z "${!__name+defined}" ]; then
                echo "$0: invalid option '$1' (no variable '${__name}' has a default in this script; see --help)" 1>&2
                exit 1
            fi
            if [ $# -lt 2 ]; then
                echo "$0: option '$1' needs a value" 1>&2
                exit 1
            fi
            __old_value="${!__name}"
            if [ "${__old_value}" = true ] || [ "${__old_value}" = false ]; then
                if [ "$2" != true ] && [ "$2" != false ]; then
                    echo "$0: option '$1' takes true or false, got '$2'" 1>&2
                    exit 1
                fi
            fi
            printf -v "${__name}" '%s' "$2"
            shift 2
            ;;
        *)
            break
            ;;
    esac
done
unset __name __value __old_value
true
