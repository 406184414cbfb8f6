#!/usr/bin/env bash
# A scripted chat over plain HTTP with curl: three users, a DM and a group; send, edit,
# delete, react, page history and read the changes feed. Run against `make run`:
#   bash scripts/curl-demo.sh [http://127.0.0.1:8000]
set -euo pipefail
BASE=${1:-http://127.0.0.1:8000}/api/v1
RUN=$RANDOM
PASSWORD="demo passphrase $RUN"
json=(-sS -H 'content-type: application/json')
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

register_and_login() {
  curl "${json[@]}" -X POST "$BASE/auth/register" -d "{\"username\":\"$1\",\"password\":\"$PASSWORD\"}" >/dev/null
  curl "${json[@]}" -X POST "$BASE/auth/login" -d "{\"username\":\"$1\",\"password\":\"$PASSWORD\"}"
}
ALICE=$(register_and_login "alice$RUN"); A=$(echo "$ALICE" | field "['access_token']")
BOB=$(register_and_login "bob$RUN");     B=$(echo "$BOB" | field "['access_token']");   BOB_ID=$(echo "$BOB" | field "['user']['id']")
CAROL=$(register_and_login "carol$RUN"); CAROL_ID=$(echo "$CAROL" | field "['user']['id']")
auth() { echo "authorization: Bearer $1"; }

DM=$(curl "${json[@]}" -H "$(auth "$A")" -X POST "$BASE/conversations" -d "{\"type\":\"direct\",\"user_id\":\"$BOB_ID\"}" | field "['conversation']['id']")
GROUP=$(curl "${json[@]}" -H "$(auth "$A")" -X POST "$BASE/conversations" \
  -d "{\"type\":\"group\",\"name\":\"Demo $RUN\",\"member_ids\":[\"$BOB_ID\",\"$CAROL_ID\"]}" | field "['conversation']['id']")
echo "DM $DM, group $GROUP"

M1=$(curl "${json[@]}" -H "$(auth "$A")" -X POST "$BASE/conversations/$DM/messages" -d '{"content":"hi **bob**","client_msg_id":"demo-1"}' | field "['message']['id']")
curl "${json[@]}" -H "$(auth "$A")" -X POST "$BASE/conversations/$DM/messages" -d '{"content":"hi **bob**","client_msg_id":"demo-1"}' -o /dev/null -w "resend with the same client_msg_id -> HTTP %{http_code} (no duplicate)\n"
M2=$(curl "${json[@]}" -H "$(auth "$B")" -X POST "$BASE/conversations/$DM/messages" -d "{\"content\":\"hey @alice$RUN\",\"reply_to_id\":\"$M1\"}" | field "['message']['id']")
curl "${json[@]}" -H "$(auth "$A")" -X PATCH "$BASE/messages/$M1" -d '{"content":"hi **Bob**!"}' | field "['message']['edited_at']" | sed 's/^/edited at /'
curl "${json[@]}" -H "$(auth "$A")" -X PUT "$BASE/messages/$M2/reactions/%F0%9F%91%8D" | field "['message']['reactions']" | sed 's/^/reactions: /'
curl "${json[@]}" -H "$(auth "$B")" -X DELETE "$BASE/messages/$M2" | field "['message']['deleted']" | sed 's/^/deleted: /'
curl "${json[@]}" -H "$(auth "$A")" -X POST "$BASE/conversations/$GROUP/messages" -d '{"content":"welcome to the group"}' >/dev/null

echo "history of the DM (latest page, limit 2):"
curl "${json[@]}" -H "$(auth "$B")" "$BASE/conversations/$DM/messages?limit=2" | python3 -c "
import json,sys
page=json.load(sys.stdin)
for m in page['messages']: print(f\"  seq {m['seq']} v{m['version_seq']} deleted={m['deleted']} {m['content']!r}\")
print('  has_more', page['has_more'])"
echo "changes of the DM after seq 1:"
curl "${json[@]}" -H "$(auth "$B")" "$BASE/conversations/$DM/changes?after_seq=1" | python3 -c "
import json,sys
feed=json.load(sys.stdin)
for m in feed['messages']: print(f\"  seq {m['seq']} v{m['version_seq']} deleted={m['deleted']} reactions={[r['emoji'] for r in m['reactions']]}\")
print('  last_seq', feed['last_seq'])"
curl "${json[@]}" -H "$(auth "$B")" -X POST "$BASE/conversations/$DM/read" -d '{"seq":4}' | field "['unread_count']" | sed 's/^/bob unread after reading: /'
curl "${json[@]}" -H "$(auth "$B")" "$BASE/conversations" | python3 -c "
import json,sys
for c in json.load(sys.stdin)['conversations']: print(f\"  {c['type']:6} {c['name'] or '(direct)'} last_seq={c['last_seq']} unread={c['unread_count']}\")"
