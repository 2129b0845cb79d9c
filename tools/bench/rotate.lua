-- wrk script: sends GET requests whose headers come from a file, one
-- credential per line as "Name: value" fields separated by tabs, cycling
-- through the lines. Each thread starts at its own line. At the end it
-- prints one line "JSON {...}" with the totals and latency percentiles.
--
-- Usage: wrk ... -s rotate.lua URL -- CREDENTIALS_FILE

local requests = {}
local next_index = 1

function init(args)
  for line in io.lines(args[1]) do
    local headers = {}
    for field in string.gmatch(line, "[^\t]+") do
      local name, value = string.match(field, "^([^:]+):%s*(.*)$")
      headers[name] = value
    end
    table.insert(requests, wrk.format("GET", nil, headers))
  end
  next_index = math.random(#requests)
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function done(summary, latency, _)
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "errors_connect": %d, "errors_read": %d, ' ..
    '"errors_write": %d, "errors_status": %d, "errors_timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.mean, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
end
