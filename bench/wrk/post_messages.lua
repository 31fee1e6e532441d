-- wrk: POST /api/v1/messages, a text message per request from rotating users with a fresh
-- Idempotency-Key each. See common.lua for TOKENS / CHAT_ID and the report.
--   TOKENS=bench/results/tokens.txt CHAT_ID=1 wrk -t2 -c32 -d20s --latency \
--       -s bench/wrk/post_messages.lua http://127.0.0.1:8000
dofile(debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "common.lua")

function request()
   local auth, key = next_identity()
   local body = string.format('{"chat_id":%d,"type":"text","content":"wrk %s"}', chat_id, key)
   return wrk.format("POST", "/api/v1/messages", {
      ["Authorization"] = auth,
      ["Idempotency-Key"] = key,
      ["Content-Type"] = "application/json",
   }, body)
end
