#!/usr/bin/env bash
# A credit published in NATS's own text protocol over a plain TCP socket (socat), for publishing
# teams whose language has no NATS client at hand: it shows every byte a publisher must send.
# Usage: NATS=127.0.0.1:4222 USER_ID=alice AMOUNT=1000 bash docs/examples/publish-raw.sh
# (test/contract/raw-protocol.test.ts runs this file against a real nats-server and service.)
set -euo pipefail
NATS=${NATS:-127.0.0.1:4222}
ID=${OPERATION_ID:-$(cat /proc/sys/kernel/random/uuid)}   # keep it: it is the idempotency key
BODY="{\"operationId\":\"$ID\",\"userId\":\"${USER_ID:-alice}\",\"amount\":\"${AMOUNT:-1000}\"}"
# Headers block: version line, one header per line, an empty line; every line ends in CRLF.
HEADERS=$'NATS/1.0\r\nNats-Msg-Id: '"$ID"$'\r\n\r\n'
{
  # headers:true is required to send HPUB; add "user"/"pass" or "auth_token" if the server wants them.
  printf 'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1,"name":"raw-publisher"}\r\n'
  # The operation's one event, whatever its name (credited or rejected): subscribe before publishing.
  printf 'SUB billing.evt.*.%s 1\r\n' "$ID"
  # JetStream answers a publish that has a reply subject with its acknowledgement (the PubAck).
  printf 'SUB _INBOX.raw.%s 2\r\n' "$ID"
  # HPUB <subject> <reply> <header bytes> <header + payload bytes>
  printf 'HPUB billing.cmd.credit _INBOX.raw.%s %d %d\r\n%s%s\r\n' "$ID" "${#HEADERS}" "$(( ${#HEADERS} + ${#BODY} ))" "$HEADERS" "$BODY"
  printf 'PING\r\n'
  sleep "${WAIT_SECONDS:-3}"   # time for the service to apply it and publish the event
} | socat -t 1 - "TCP:$NATS,connect-timeout=5"
