# mask-secrets.sh — shared by the host scripts that print what a container said (run-migration.sh,
# health-gate.sh): every secret value of the env lines in $ENV_LINES, and the password inside a
# secret URL, becomes [secret] in that text. A value is secret when its name looks like one
# (*URL, *URI, *SECRET*, *PASSWORD*, *PASS, *TOKEN*, *KEY*, *CREDENTIAL*) or is listed in
# $MASK_EXTRA_KEYS (space-separated names). Inlined into each script sent to a host.
#
# Use: { secret_values; printf '%s\n' "$MASK_END"; <the text> } | mask_secrets
# The values reach awk ahead of the text on the same pipe: never an argument, an environment
# variable or a file. printf is a builtin: nothing here is a new process's argument.

is_secret_key() {
    case "$1" in
        *URL | *URI | *SECRET* | *PASSWORD* | *PASS | *TOKEN* | *KEY* | *CREDENTIAL*) return 0 ;;
    esac
    for listed in ${MASK_EXTRA_KEYS:-}; do [ "$listed" = "$1" ] && return 0; done
    return 1
}

# One value a line: each secret value, then the password of each secret URL (after the URL itself,
# so the longer text is masked first).
secret_values() {
    printf '%s\n' "$ENV_LINES" | while IFS= read -r line; do
        case "$line" in '' | '#'*) continue ;; esac
        key=${line%%=*}
        is_secret_key "$key" || continue
        printf '%s\n' "${line#*=}"
    done
    printf '%s\n' "$ENV_LINES" | while IFS= read -r line; do
        case "$line" in '' | '#'*) continue ;; esac
        key=${line%%=*}
        value=${line#*=}
        is_secret_key "$key" || continue
        case "$value" in
            *://*:*@*)
                userinfo=${value#*://}
                userinfo=${userinfo%%@*}
                printf '%s\n' "${userinfo#*:}"
                ;;
        esac
    done
}

# Values shorter than 4 characters are left alone: masking them would garble every line.
MASK_END="--- end of masks $$ $(date +%s) ---"
mask_secrets() {
    awk -v end="$MASK_END" '
        !started { if ($0 == end) started = 1; else if (length($0) >= 4) secret[++n] = $0; next }
        {
            line = $0
            for (i = 1; i <= n; i++) {
                out = ""
                while ((at = index(line, secret[i])) > 0) {
                    out = out substr(line, 1, at - 1) "[secret]"
                    line = substr(line, at + length(secret[i]))
                }
                line = out line
            }
            print line
            fflush()
        }'
}
