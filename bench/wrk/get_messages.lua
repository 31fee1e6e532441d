-- wrk: GET /api/v1/messages?chat_id=N&limit=50 (the newest page) from rotating users.
-- See common.lua for TOKENS / CHAT_ID and the report.
--   TOKENS=bench/results/tokens.txt CHAT_ID=1 wrk -t2 -c32 -d20s --latency \
--       -s bench/wrk/get_messages.lua http://127.0.0.1:8000
dofile(debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "common.lua")

function request()
   local auth = next_identity()
   return wrk.format("GET", "/api/v1/messages?chat_id=" .. chat_id .. "&limit=50",
                     {["Authorization"] = auth})
end
