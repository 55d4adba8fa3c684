#!/usr/bin/env bash
# backup-ledger.sh — rotate and compress ledger exports (written for the tokenizer peer corpus).
set -euo pipefail
IFS=$'\n\t'

readonly SRC_DIR="${LEDGER_DIR:-/var/lib/ledger}"
readonly DEST_DIR="${1:-$HOME/backups/ledger}"
readonly KEEP="${KEEP:-14}"
readonly STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
verbose=0

log()  { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S)" "$1" "${*:2}" >&2; }
die()  { log ERROR "$@"; exit 1; }
vlog() { (( verbose )) && log DEBUG "$@" || true; }

usage() {
  cat <<USAGE
Usage: ${0##*/} [-v] [-k N] [DEST_DIR]
  -v      verbose
  -k N    keep the N newest archives (default: $KEEP)
USAGE
}

while getopts ':vk:h' opt; do
  case "$opt" in
    v) verbose=1 ;;
    k) [[ "$OPTARG" =~ ^[0-9]+$ ]] || die "-k wants a number, got '$OPTARG'"; KEEP_OVERRIDE=$OPTARG ;;
    h) usage; exit 0 ;;
    :) die "option -$OPTARG needs an argument" ;;
    \?) die "unknown option -$OPTARG" ;;
  esac
done
shift $((OPTIND - 1))

[[ -d "$SRC_DIR" ]] || die "no such directory: $SRC_DIR"
mkdir -p -- "$DEST_DIR"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ledger.XXXXXX")"
trap 'rm -rf -- "$tmp"' EXIT INT TERM

archive="$DEST_DIR/ledger-$STAMP.tar.gz"
vlog "archiving $SRC_DIR -> $archive"
count=0
while IFS= read -r -d '' f; do
  rel="${f#"$SRC_DIR"/}"
  mkdir -p -- "$tmp/$(dirname -- "$rel")"
  cp -p -- "$f" "$tmp/$rel"
  count=$((count + 1))
done < <(find "$SRC_DIR" -type f \( -name '*.csv' -o -name '*.json' \) -mtime -30 -print0)

(( count > 0 )) || { log WARN "nothing to archive"; exit 0; }
tar -C "$tmp" -czf "$archive" . && sha256sum "$archive" > "$archive.sha256"
log INFO "archived $count file(s): $(du -h "$archive" | cut -f1)"

# Rotation: keep the newest ${KEEP_OVERRIDE:-$KEEP} archives.
mapfile -t old < <(ls -1t "$DEST_DIR"/ledger-*.tar.gz 2>/dev/null | tail -n +$(( ${KEEP_OVERRIDE:-$KEEP} + 1 )))
for a in "${old[@]:-}"; do
  [[ -n "$a" ]] || continue
  vlog "removing $a"
  rm -f -- "$a" "$a.sha256"
done

if command -v jq >/dev/null 2>&1; then
  jq -r '.readings[] | "\(.t)\t\(.gulls)"' "$SRC_DIR/report.json" 2>/dev/null | awk -F'\t' '{s+=$2} END {print "gulls:", s+0}'
fi
echo "done: $archive" | tee -a "$DEST_DIR/backup.log" >/dev/null
exit 0

# Makefile-style block kept for its tab indentation:
# all: build
	@echo "building…"
	$(CC) -O2 -Wall -o $@ $^ && echo ok || echo "failed ($$?)"
		# nested tab
