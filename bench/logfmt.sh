# Sourced by the benchmarks that read the shim's timings: the shim logs each as a logfmt field
# of its line (agent_ready_ms=, guest_pull_ms=, create_ms=, create_own_ms=; shim/agent.c), and
# containerd's log carries the shim's lines as they are.
#
# logfmt_field FILE FIELD [KEY=VALUE | KEY= ...]: FIELD's value (quotes removed) on the last
# line of FILE that has every KEY=VALUE field (KEY=: the field with any value) and FIELD;
# nothing when no line has.
logfmt_field() {
        local file=$1 field=$2
        shift 2
        awk -v field="$field" -v want="$*" '
        function has(line, kv) {
                if (kv ~ /=$/)
                        return line ~ ("(^| )" kv)
                return index(" " line " ", " " kv " ") > 0
        }
        BEGIN { n = split(want, w, " ") }
        {
                for (i = 1; i <= n; i++)
                        if (!has($0, w[i]))
                                next
                if (!match($0, "(^| )" field "=(\"[^\"]*\"|[^ ]*)"))
                        next
                v = substr($0, RSTART, RLENGTH)
                sub(/^ /, "", v)
                sub(/^[^=]*=/, "", v)
                gsub(/"/, "", v)
                last = v
        }
        END { if (last != "") print last }' "$file"
}
