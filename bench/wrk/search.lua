-- wrk: GET /api/v1/search/messages?q=... over the searchers' chats (bench/search_setup.py).
-- TOKENS: bench/results/search-tokens.txt; QUERIES: one URL-encoded query per line
-- (default bench/results/search-queries.txt), rotated with the tokens; QUERY_INDEX=N uses
-- only the Nth (1-based) query, to measure one kind of query alone.
dofile(debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "common.lua")

local queries = {}
local file = assert(io.open(os.getenv("QUERIES") or "bench/results/search-queries.txt", "r"))
for line in file:lines() do
   if #line > 0 then queries[#queries + 1] = line end
end
file:close()
local only = tonumber(os.getenv("QUERY_INDEX") or "")
if only then queries = {queries[only]} end

function request()
   local auth = next_identity()
   local q = queries[counter % #queries + 1]
   return wrk.format("GET", "/api/v1/search/messages?q=" .. q, {["Authorization"] = auth})
end
