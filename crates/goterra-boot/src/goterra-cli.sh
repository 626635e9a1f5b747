#!/bin/bash
# goterra-cli, shell edition: the in-VM store client of Goterra, needing only bash, curl and
# coreutils. Same flags, environment and exit codes as the Rust goterra-cli:
#   goterra-cli [--url URL] [--deployment ID] [--token TOKEN] [--timeout MINUTES] get KEY
#   goterra-cli [...] put KEY VALUE | put KEY @FILE
# Environment: GOT_URL, GOT_DEPLOYMENT, GOT_TOKEN, GOT_TRIM. Exit codes: 0 done, 1 timed out or
# failed, 2 usage, 3 credentials refused. The token never appears on a command line.
set -u

url=${GOT_URL:-}
deployment=${GOT_DEPLOYMENT:-}
token=${GOT_TOKEN:-}
timeout_minutes=30

usage() {
  echo "usage: goterra-cli [--url URL] [--deployment ID] [--token TOKEN] [--timeout MINUTES] get KEY | put KEY VALUE | put KEY @FILE" >&2
  exit 2
}
fail() { echo "goterra-cli: $*" >&2; exit 1; }

args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -url|--url) [ $# -ge 2 ] || usage; url=$2; shift 2 ;;
    -url=*|--url=*) url=${1#*=}; shift ;;
    -deployment|--deployment) [ $# -ge 2 ] || usage; deployment=$2; shift 2 ;;
    -deployment=*|--deployment=*) deployment=${1#*=}; shift ;;
    -token|--token) [ $# -ge 2 ] || usage; token=$2; shift 2 ;;
    -token=*|--token=*) token=${1#*=}; shift ;;
    -timeout|--timeout) [ $# -ge 2 ] || usage; timeout_minutes=$2; shift 2 ;;
    -timeout=*|--timeout=*) timeout_minutes=${1#*=}; shift ;;
    -h|-help|--help) usage ;;
    store) shift ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -ge 1 ] || usage
command=${args[0]}
case "$timeout_minutes" in ''|*[!0-9]*) echo "goterra-cli: --timeout takes whole minutes" >&2; exit 2 ;; esac
[ -n "$url" ] || { echo "goterra-cli: no server URL (--url or GOT_URL)" >&2; exit 2; }
[ -n "$deployment" ] || { echo "goterra-cli: no deployment (--deployment or GOT_DEPLOYMENT)" >&2; exit 2; }
while [ "${url%/}" != "$url" ]; do url=${url%/}; done

work=$(mktemp -d) || fail "cannot create a temporary directory"
trap 'rm -rf "$work"' EXIT

valid_key() { [[ $1 =~ ^[A-Za-z0-9_.:@-]{1,256}$ ]] || { echo "goterra-cli: invalid key '$1': 1 to 256 of A-Z a-z 0-9 _ . : @ -" >&2; exit 2; }; }
urlencode() {
  local s=$1 out='' c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case "$c" in
      [A-Za-z0-9._~-]) out+=$c ;;
      *) printf -v c '%%%02X' "'$c"; out+=$c ;;
    esac
  done
  printf '%s' "$out"
}

# curl with the token read from a config on stdin, so it never shows in `ps`.
# Prints the HTTP status, "000" when the server could not be reached.
request() {
  local code
  code=$(printf 'header = "Authorization: Bearer %s"\n' "$token" | curl -sS -K - -o "$work/answer" -w '%{http_code}' "$@" 2>"$work/curl.err") || code=000
  printf '%s' "$code"
}

# Decodes the "value" string of a store answer into $work/value (bytes exactly).
decode_value() {
  LC_ALL=C awk '
    function hexval(h,   i, v, c) { v = 0; h = tolower(h)
      for (i = 1; i <= length(h); i++) { c = index("0123456789abcdef", substr(h, i, 1)) - 1; v = v * 16 + c }
      return v }
    BEGIN { RS = "\001" }
    { s = $0; i = index(s, "\"value\":\""); if (i == 0) exit 1; s = substr(s, i + 9)
      while (1) {
        j = match(s, /["\\]/); if (j == 0) exit 1
        printf "%s", substr(s, 1, j - 1); c = substr(s, j, 1)
        if (c == "\"") exit 0
        e = substr(s, j + 1, 1); s = substr(s, j + 2)
        if (e == "n") printf "\n"; else if (e == "t") printf "\t"; else if (e == "r") printf "\r"
        else if (e == "b") printf "\b"; else if (e == "f") printf "\f"
        else if (e == "u") { printf "%c", hexval(substr(s, 1, 4)); s = substr(s, 5) }
        else printf "%s", e
      } }' "$work/answer" > "$work/value"
}

# True when the file is UTF-8 text without control characters other than tab, CR and LF.
is_text() {
  local file=$1
  if [ "$(tr -d '\000' < "$file" | wc -c)" != "$(wc -c < "$file")" ]; then return 1; fi
  if LC_ALL=C grep -q $'[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' "$file"; then return 1; fi
  if command -v iconv > /dev/null 2>&1; then
    iconv -f UTF-8 -t UTF-8 "$file" > /dev/null 2>&1 || return 1
  fi
  if [ "$(head -c 7 "$file")" = "base64:" ]; then return 1; fi
  return 0
}

# Writes the JSON string encoding of a file (text as is, anything else as "base64:...").
json_string() {
  local file=$1
  if is_text "$file"; then
    printf '"'
    LC_ALL=C awk 'BEGIN { ORS = "" } { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "\\r"); if (NR > 1) print "\\n"; print }' "$file"
    if [ "$(tail -c 1 "$file" | od -An -tx1 | tr -d ' \n')" = "0a" ]; then printf '\\n'; fi
    printf '"'
  else
    printf '"base64:'
    base64 -w 0 < "$file"
    printf '"'
  fi
}

case "$command" in
  get)
    [ ${#args[@]} -eq 2 ] || usage
    key=${args[1]}; valid_key "$key"
    deadline=$(( $(date +%s) + timeout_minutes * 60 ))
    while :; do
      left=$(( deadline - $(date +%s) )); [ "$left" -gt 0 ] || left=0
      wait=$(( left > 600 ? 600 : left ))
      code=$(request --max-time $(( wait + 30 )) "$url/store/$(urlencode "$deployment")/$(urlencode "$key")?wait=$wait")
      case "$code" in
        200)
          decode_value || fail "unreadable answer from the server"
          if [ "$(head -c 7 "$work/value")" = "base64:" ]; then
            tail -c +8 "$work/value" | base64 -d || fail "corrupt base64 value"
          else
            cat "$work/value"; echo
          fi
          exit 0 ;;
        401|403) echo "goterra-cli: credentials refused ($code): $(cat "$work/answer" 2>/dev/null)" >&2; exit 3 ;;
        404) ;;
        000) echo "goterra-cli: cannot reach $url: $(cat "$work/curl.err")" >&2; [ "$left" -gt 0 ] && sleep 2 ;;
        *) echo "goterra-cli: server answered $code, retrying" >&2; [ "$left" -gt 0 ] && sleep 2 ;;
      esac
      if [ "$(date +%s)" -ge "$deadline" ]; then fail "timed out waiting for key $key"; fi
    done ;;
  put)
    [ ${#args[@]} -eq 3 ] || usage
    key=${args[1]}; valid_key "$key"; value=${args[2]}
    if [ "${value:0:1}" = "@" ]; then
      file=${value:1}
      [ -r "$file" ] || fail "cannot read $file"
      limit=${GOT_TRIM:-10000000}
      case "$limit" in ''|*[!0-9]*) limit=10000000 ;; esac
      [ "$limit" -le 10000000 ] || limit=10000000
      tail -c "$limit" "$file" > "$work/content" || fail "cannot read $file"
    else
      value=${value#"${value%%[![:space:]]*}"}; value=${value%"${value##*[![:space:]]}"}
      printf '%s' "$value" > "$work/content"
    fi
    { printf '{"key":"%s","value":' "$key"; json_string "$work/content"; printf '}'; } > "$work/body"
    for attempt in 1 2 3 4 5; do
      code=$(request -X PUT -H 'Content-Type: application/json' --data-binary @"$work/body" "$url/store/$(urlencode "$deployment")")
      case "$code" in
        200) exit 0 ;;
        401|403) echo "goterra-cli: credentials refused ($code): $(cat "$work/answer" 2>/dev/null)" >&2; exit 3 ;;
        4*) fail "value refused ($code): $(cat "$work/answer" 2>/dev/null)" ;;
        *) echo "goterra-cli: put failed ($code), attempt $attempt" >&2; sleep "$attempt" ;;
      esac
    done
    fail "could not store key $key" ;;
  *) echo "goterra-cli: unknown command '$command'" >&2; usage ;;
esac
