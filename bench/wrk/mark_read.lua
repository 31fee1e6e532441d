-- wrk: PUT /api/v1/chats/$CHAT_ID/read, every request moving one reader's marker forward.
-- TOKENS: the readers (bench/results/reader-tokens.txt), MARK_IDS: the chat's message ids in
-- order (bench/results/mark-ids.txt), THREADS: wrk's -t. Thread t takes the readers t, t+T,
-- t+2T... in turn, and each reader marks the chat's next message on each of its requests, so
-- every mark moves a marker and writes an event (until a reader runs out of ids: then its marks
-- stop moving and write nothing).
dofile(debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "common.lua")

local base_init = init
function init(args)
   base_init(args)
   ids = {}
   for line in io.lines(os.getenv("MARK_IDS") or "bench/results/mark-ids.txt") do
      ids[#ids + 1] = line
   end
   local threads = tonumber(os.getenv("THREADS") or "2")
   mine, marked = {}, {}
   for i, token in ipairs(tokens) do
      if (i - 1) % threads == id - 1 then
         mine[#mine + 1] = "Bearer " .. token
         marked[#mine] = 0
      end
   end
   turn = 0
end

function request()
   turn = turn % #mine + 1
   marked[turn] = marked[turn] + 1
   local message = ids[math.min(marked[turn], #ids)]
   return wrk.format("PUT", "/api/v1/chats/" .. chat_id .. "/read", {
      ["Authorization"] = mine[turn],
      ["Content-Type"] = "application/json",
   }, '{"message_id":' .. message .. '}')
end
