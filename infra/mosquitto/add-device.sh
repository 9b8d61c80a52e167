#!/usr/bin/env bash
# Adds (or replaces) a broker login in a mosquitto password file:
#   infra/mosquitto/add-device.sh <password-file> <device-id> <api-key>
#   infra/mosquitto/add-device.sh <password-file> iotflow-bridge <bridge-password>
# Run it when a device is registered or its key rotated (the key is shown only then), then make
# mosquitto reload the file: `kill -HUP <pid>` or `docker compose kill -s HUP mosquitto`.
# mosquitto_passwd stores a salted PBKDF2-SHA512 hash, never the key itself.
set -euo pipefail
if [[ $# -ne 3 ]]; then
  echo "usage: $0 <password-file> <device-id|iotflow-bridge> <api-key|password>" >&2
  exit 2
fi
file=$1 user=$2 password=$3
if [[ $user != iotflow-bridge && ! $user =~ ^[1-9][0-9]*$ ]]; then
  echo "error: the username of a device is its numeric id, got '$user'" >&2
  exit 2
fi
[[ -f $file ]] || (umask 077 && : >"$file")
mosquitto_passwd -b "$file" "$user" "$password"
