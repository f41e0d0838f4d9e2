-- wrk script for bench/load.py: POST a prepared body (multipart upload or JSON); done() prints the run as JSON.
--
--   wrk -t1 -c8 -d10s -s bench/lua/post.lua URL -- BODY_FILE CONTENT_TYPE same
--   wrk ... -- BODY_FILE CONTENT_TYPE tag   OFFSET LEN NONCE
--   wrk ... -- BODY_FILE CONTENT_TYPE words OFFSET LEN WORDS_FILE N_WORDS
--
-- BODY_FILE holds the exact request body.
--   same:  every request sends it unchanged (after the first, the service's SLR cache answers the encoding).
--   tag:   the LEN bytes at OFFSET (0-based) become a unique hex tag per request (NONCE, thread, counter);
--          load.py points them at bytes a decoder ignores (the x264 encoder-info text inside an mp4), so every
--          upload is new to the cache yet decodes to the same frames.
--   words: the LEN bytes at OFFSET become N_WORDS words drawn at random from WORDS_FILE (one per line; the
--          model's vocabulary), so every sentence is, with overwhelming odds, new to the cache.
-- done() prints one line `WRKJSON {...}`: counts, errors by kind, 503s, latency percentiles in microseconds.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local mode, prefix, suffix, tag_len, nonce, words, n_words, static_request
local counter = 0

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = args[2]
  mode = args[3] or "same"
  if mode == "same" then
    static_request = wrk.format(nil, nil, nil, body)
  else
    local offset, len = tonumber(args[4]), tonumber(args[5])
    prefix, suffix = body:sub(1, offset), body:sub(offset + len + 1)
    if mode == "tag" then
      tag_len, nonce = len, args[6] or "0"
    else
      words = {}
      for line in io.lines(args[6]) do
        if #line > 0 then table.insert(words, line) end
      end
      n_words = tonumber(args[7] or "6")
      math.randomseed(os.time() + 7919 * id)
    end
  end
  n503, nother = 0, 0
end

function request()
  if static_request then
    return static_request
  end
  counter = counter + 1
  local middle
  if mode == "tag" then
    middle = string.format("%s%02x%08x", nonce, id % 256, counter)
    middle = string.sub(string.rep("0", tag_len) .. middle, -tag_len)
  else
    local picked = {}
    for i = 1, n_words do picked[i] = words[math.random(#words)] end
    middle = table.concat(picked, " ")
  end
  return wrk.format(nil, nil, nil, prefix .. middle .. suffix)
end

function response(status, headers, body)
  if status == 503 then
    n503 = n503 + 1
  elseif status >= 300 then
    nother = nother + 1
  end
end

function done(summary, latency, requests)
  local s503, sother = 0, 0
  for _, t in ipairs(threads) do
    s503 = s503 + (t:get("n503") or 0)
    sother = sother + (t:get("nother") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"status_503": %d, "status_other": %d, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p95": %d, "p99": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, s503, sother,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99)))
end
