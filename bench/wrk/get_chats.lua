-- wrk: GET /api/v1/chats (every chat with unread_count, last_read_message_id, last_message).
-- TOKENS: the reader's token (bench/results/reader-token.txt from conversation_setup.py).
dofile(debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "common.lua")

function request()
   local auth = next_identity()
   return wrk.format("GET", "/api/v1/chats", {["Authorization"] = auth})
end
