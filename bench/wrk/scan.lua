-- wrk script: every request is a real check-in or check-out through POST /api/v1/scans.
--
-- SCAN_DATA names a Lua file written by bench/scan_throughput.py:
--   return { token = "<signed poster token>", cookies = { "<device secret>", ... } }
-- The devices are shared out between wrk's threads (thread k takes every T-th one) and each thread
-- walks its own devices in turn, so one device never has two requests in flight while a thread has
-- more devices than connections. Every request carries a fresh nonce (thread id, counter, start
-- time), so the server never answers "duplicate"; `confirm = true` ends a patrol without the
-- "end it early?" question a phone would ask first.
local data = dofile(os.getenv("SCAN_DATA"))
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  tid = tonumber(wrk.thread:get("tid"))
  nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
  mine = {}
  for i = tid, #data.cookies, nthreads do
    table.insert(mine, data.cookies[i])
  end
  pos = 0
  seq = 0
  -- Every answered check-in and check-out is written down with its attendance id, so that the
  -- database can be compared with what the phones were told.
  answered = io.open(string.format("%s.%d", os.getenv("SCAN_ANSWERS"), tid), "w")
  stamp = os.time()
  check_in, check_out, duplicate, other, non200 = 0, 0, 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  pos = pos % #mine + 1
  seq = seq + 1
  wrk.headers["Cookie"] = "pv_device=" .. mine[pos]
  local nonce = string.format("w%d-%d-%d", tid, stamp, seq)
  local body = string.format('{"token":"%s","nonce":"%s","confirm":true}', data.token, nonce)
  return wrk.format("POST", "/api/v1/scans", nil, body)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  elseif string.find(body, '"action": *"check_in"') then
    check_in = check_in + 1
    answered:write("check_in ", string.match(body, '"attendance": *{[^}]-"id": *(%d+)') or "?", "\n")
  elseif string.find(body, '"action": *"check_out"') then
    check_out = check_out + 1
    answered:write("check_out ", string.match(body, '"attendance": *{[^}]-"id": *(%d+)') or "?", "\n")
  elseif string.find(body, '"action": *"duplicate"') then
    duplicate = duplicate + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  -- each thread's file is flushed when its Lua state is closed; the caller reads them after wrk exits
  local t = {check_in = 0, check_out = 0, duplicate = 0, other = 0, non200 = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + tonumber(thread:get(k))
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,' ..
    '"max_ms":%.2f,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"check_in":%d,"check_out":%d,"duplicate":%d,"other":%d,"non200":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    t.check_in, t.check_out, t.duplicate, t.other, t.non200))
end
