-- Shared by post_messages.lua and get_messages.lua (loaded with dofile from the same folder).
-- Tokens: one per line in $TOKENS (default bench/results/tokens.txt, written by bench/setup.py);
-- every thread gets them all and rotates through them from its own offset, so consecutive
-- requests come from different users. Chat: $CHAT_ID (default 1).
-- Each thread counts responses by status and keeps one body per non-2xx status for done().

local threads = {}

local function read_tokens()
   local path = os.getenv("TOKENS") or "bench/results/tokens.txt"
   local file = assert(io.open(path, "r"), "no token file " .. path .. ": run bench/setup.py")
   local tokens = {}
   for line in file:lines() do
      if #line > 0 then tokens[#tokens + 1] = line end
   end
   file:close()
   assert(#tokens > 0, "no tokens in " .. path)
   return tokens
end

function setup(thread)
   all_tokens = all_tokens or read_tokens()
   threads[#threads + 1] = thread
   thread:set("id", #threads)
   thread:set("tokens", all_tokens)
end

function init(args)
   chat_id = tonumber(os.getenv("CHAT_ID") or "1")
   math.randomseed(os.time() * 1000 + id * 7919 + math.floor(os.clock() * 1e6))
   -- random per thread and run: keys never repeat across threads or reruns with one token file
   prefix = string.format("wrk-%08x%08x-%d-", math.random(0, 0x7fffffff),
                          math.random(0, 0x7fffffff), id)
   counter = 0
   offset = (id - 1) * 7
   statuses = {}
   samples = {}
end

-- The next request's Authorization header value and a fresh Idempotency-Key.
function next_identity()
   counter = counter + 1
   local token = tokens[(counter + offset) % #tokens + 1]
   return "Bearer " .. token, prefix .. counter
end

function response(status, headers, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
   if (status < 200 or status > 299) and samples[key] == nil then
      samples[key] = string.sub(body or "", 1, 300)
   end
end

local function json_string(s)
   return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
   local counts, bodies = {}, {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + n
      end
      for status, body in pairs(thread:get("samples")) do
         bodies[status] = bodies[status] or body
      end
   end
   local seconds = summary.duration / 1e6
   local ms = function(p) return latency:percentile(p) / 1000 end
   local e = summary.errors
   local non2xx = 0
   for status, n in pairs(counts) do
      if status:sub(1, 1) ~= "2" then non2xx = non2xx + n end
   end
   io.write(string.format("\n%d requests in %.1fs = %.1f req/s\n", summary.requests, seconds,
                          summary.requests / seconds))
   io.write(string.format("latency ms: p50=%.1f p90=%.1f p99=%.1f max=%.1f mean=%.1f\n",
                          ms(50), ms(90), ms(99), latency.max / 1000, latency.mean / 1000))
   io.write(string.format("socket errors: connect=%d read=%d write=%d timeout=%d\n",
                          e.connect, e.read, e.write, e.timeout))
   local parts = {}
   for status, n in pairs(counts) do
      io.write(string.format("status %s: %d\n", status, n))
      parts[#parts + 1] = json_string(status) .. ":" .. n
   end
   io.write(string.format("non-2xx: %d\n", non2xx))
   local sample_parts = {}
   for status, body in pairs(bodies) do
      io.write(string.format("  e.g. %s: %s\n", status, body))
      sample_parts[#sample_parts + 1] = json_string(status) .. ":" .. json_string(body)
   end
   io.write(string.format(
      'WRK_JSON {"requests":%d,"seconds":%.3f,"rps":%.2f,"p50_ms":%.2f,"p90_ms":%.2f,' ..
      '"p99_ms":%.2f,"max_ms":%.2f,"non2xx":%d,"timeouts":%d,"statuses":{%s},"samples":{%s}}\n',
      summary.requests, seconds, summary.requests / seconds, ms(50), ms(90), ms(99),
      latency.max / 1000, non2xx, e.timeout, table.concat(parts, ","),
      table.concat(sample_parts, ",")))
end
