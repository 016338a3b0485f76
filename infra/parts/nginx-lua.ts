/**
 * The router's data plane in nginx (Debian's lua module): Host -> app -> peers from a shared dict,
 * changed by change sets the router posts to a unix-socket admin server, with no reload. Written by
 * infra to `<nginx dir>/lua/wharf_router.lua`; the base config (nginx.ts) calls it from `set_by_lua`
 * (the route: no coroutine per request, unlike `access_by_lua`), `balancer_by_lua`,
 * `ssl_certificate_by_lua`, a `content_by_lua` for what is not proxied (404, 503, 413, chunked bodies
 * measured), and the admin server's `content_by_lua`.
 *
 * Dict keys: `h:<host>` -> app; `a:<app>` -> JSON `{s: "up"|"idle"|"maintenance", b: body limit in
 * bytes (0: none), t: proxy timeout s, p: ["addr:port", ...]}`; `c:<host>` -> certificate id;
 * `k:<id>` -> JSON `{c: PEM chain, k: PEM key}`; `epoch` -> the epoch of the last `full` change set
 * (the router compares it to tell that nginx restarted with an empty dict); `v` -> a counter every
 * change set bumps after its writes.
 *
 * Every worker reads the dict's version per request and keeps host -> decoded entry while it is
 * unchanged (decoded entries are also cached keyed by the raw text): the first request after a change
 * set reads the dict anew, so when the admin server answers, the change is live in every worker.
 */
/** How long a connect to a peer may take when it is the last one left to try, s (nginx's proxy_connect_timeout). */
export const CONNECT_S = 2
/**
 * How long a connect to a peer may take while another is left to try, s: a host that is lost answers
 * nothing, and a live peer connects within milliseconds (a dropped SYN is sent again only after 1 s).
 */
export const QUICK_CONNECT_S = 0.5

export const ROUTER_LUA = `
local cjson = require "cjson.safe"
local bit = require "bit"
local balancer = require "ngx.balancer"
local ssl = require "ngx.ssl"
local lrucache = require "resty.lrucache"

local dict = ngx.shared.wharf_routes
local down = ngx.shared.wharf_down
local apps = lrucache.new(20000)
local certs = lrucache.new(2000)
local M = {}

local function text(status, msg)
  ngx.status = status
  ngx.header["Content-Type"] = "text/plain"
  ngx.say(msg)
  return ngx.exit(status)
end

-- "1.2.3.4:80" or "[::1]:80" -> host, port; nil when not an address:port pair.
local function peer(p)
  if type(p) ~= "string" or #p > 64 then return nil end
  local h, port = p:match("^(%d+%.%d+%.%d+%.%d+):(%d+)$")
  if h then
    for o in h:gmatch("%d+") do if tonumber(o) > 255 then return nil end end
  else
    h, port = p:match("^%[([%x:.]+)%]:(%d+)$")
    if not h then return nil end
  end
  port = tonumber(port)
  if port < 1 or port > 65535 then return nil end
  return h, port
end

-- Decoded app entries, cached per worker and keyed by the raw dict text: a changed entry is decoded again.
local function app_entry(app)
  local raw = dict:get("a:" .. app)
  if not raw then return nil end
  local c = apps:get(app)
  if c and c.raw == raw then return c end
  local v = cjson.decode(raw)
  if type(v) ~= "table" then return nil end
  local peers = {}
  for i, p in ipairs(v.p or {}) do
    local h, port = peer(p)
    peers[i] = { h, port, h .. ":" .. port }
  end
  c = { raw = raw, app = app, state = v.s, body = v.b or 0, timeout = v.t or 60, peers = peers, rr = 0 }
  apps:set(app, c)
  return c
end

-- Host -> entry, per worker, valid while the dict's version ("v", bumped by every change set after
-- its writes) is the one seen: one dict read per request instead of two, and no JSON. Bounded.
local hosts, byapp, nhosts, seen = {}, {}, 0, nil
local MAX_HOSTS = 20000

local function lookup(host)
  local v = dict:get("v")
  if v ~= seen then hosts, byapp, nhosts, seen = {}, {}, 0, v end
  local a = hosts[host]
  if a == nil then
    local app = dict:get("h:" .. host)
    a = app and app_entry(app) or false
    if nhosts >= MAX_HOSTS then hosts, byapp, nhosts = {}, {}, 0 end
    hosts[host] = a
    if a then byapp[a.app] = a end
    nhosts = nhosts + 1
  end
  return a
end

-- X-Request-Id ($wharf_request_id): 32 hex digits like nginx's $request_id, which costs an OpenSSL
-- RAND_bytes call a request (7,500 of the 37,000 instructions nginx ran a proxied request, callgrind):
-- 24 random hex digits per worker (from /dev/urandom, new every 2^32 requests) and a counter.
local rid_prefix, rid_n = nil, 0
local function new_rid_prefix()
  local f = io.open("/dev/urandom", "rb")
  local raw = f and f:read(12)
  if f then f:close() end
  if not raw or #raw ~= 12 then
    math.randomseed(ngx.now() * 1000 + ngx.worker.pid())
    raw = ""
    for _ = 1, 12 do raw = raw .. string.char(math.random(0, 255)) end
  end
  return (raw:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
local function request_id()
  if rid_n >= 0xffffffff or not rid_prefix then rid_prefix, rid_n = new_rid_prefix(), 0 end
  rid_n = rid_n + 1
  return rid_prefix .. bit.tohex(rid_n, 8)
end

-- Why a request is not proxied (kept in ngx.ctx for deny(); only on that path).
local function refuse(status, msg)
  ngx.ctx.wharf_deny = { status, msg }
  return ""
end

-- set_by_lua ($wharf_app, rewrite phase, no coroutine) with $host, $content_length and
-- $http_transfer_encoding as arguments (cheaper than ngx.var by name): the app's name when the request
-- goes to a peer, with its $wharf_request_id set; "" when deny() answers it instead (404, 503, 413; a
-- chunked body under a limit is measured there). The balancer cannot answer those.
local arg = ngx.arg
function M.route()
  local a = lookup(arg[1])
  if not a then
    -- No full table yet (nginx just started): the router posts it within a second.
    if not dict:get("epoch") then return refuse(503, "the router is loading the routes; try again in a second") end
    return refuse(404, "no app answers at this host")
  end
  if a.state == "maintenance" then return refuse(503, a.app .. " is down for maintenance; try again later.") end
  if a.state ~= "up" or #a.peers == 0 then return refuse(503, a.app .. " has no web process running.") end
  if a.body > 0 then
    local len = tonumber(arg[2])
    if len then
      if len > a.body then return refuse(413) end
    elseif arg[3] then
      return refuse(0, a)
    end
  end
  ngx.var.wharf_request_id = request_id()
  return a.app
end

-- content_by_lua of the "" case: the answer, or for a chunked body the measure, then the proxy.
function M.deny()
  local d = ngx.ctx.wharf_deny
  if not d then return text(500, "wharf: no route decision") end
  if d[1] == 413 then return ngx.exit(413) end
  if d[1] ~= 0 then
    if d[1] == 503 and d[2]:sub(1, 10) == "the router" then ngx.header["Retry-After"] = "1" end
    return text(d[1], d[2])
  end
  local a = d[2]
  -- A chunked body: read (nginx buffers it before proxying anyway), then measured.
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  local size = data and #data or 0
  if not data then
    local f = ngx.req.get_body_file()
    local fh = f and io.open(f, "rb")
    if fh then size = fh:seek("end"); fh:close() end
  end
  if size > a.body then return ngx.exit(413) end
  return ngx.exec("@wharf_measured")
end

-- set_by_lua of @wharf_measured ($host as argument): the app, its body already measured.
function M.measured()
  local a = lookup(arg[1])
  if not a then return "" end
  ngx.var.wharf_request_id = request_id()
  return a.app
end

-- balancer_by_lua: round robin per worker over the peers not marked down. A failed try (refused,
-- reset, timeout, 502) marks its peer down in every worker for FAIL_S (as nginx's max_fails=1
-- fail_timeout=5s did); a connect that timed out (a host that is lost or cut off answers nothing,
-- not even a refusal) marks its host down too, so that no peer on it is tried meanwhile, on a new
-- connection or on a kept-alive one (where the request would wait for the read timeout). A retry
-- goes to a peer not tried yet of the app's entry as it is then (a deploy may have replaced the
-- peers since the first try). While another peer is left to try, a connect waits QUICK_CONNECT_S;
-- the last one CONNECT_S (nginx.ts's proxy_connect_timeout). A single peer needs no choice, no
-- retry state and no down check (it is tried whatever its mark).
local FAIL_S = 5
local DEFAULT_TIMEOUT = 60
local CONNECT_S = ${CONNECT_S}
local QUICK_CONNECT_S = ${QUICK_CONNECT_S}
-- A try that timed out sooner than this was its connect (read and send timeouts are 1 s or more).
local CONNECT_TIMED_OUT_S = QUICK_CONNECT_S + 0.4

local NONE = {}

local function is_down(p)
  return down:get(p[3]) or down:get("h:" .. p[1])
end

-- The index of the next peer from start not tried yet (tried: by address:port), one not marked down
-- first; nil when every peer was tried.
local function pick(peers, start, tried)
  local n = #peers
  local fallback
  for k = 0, n - 1 do
    local j = (start + k - 1) % n + 1
    local p = peers[j]
    if not tried[p[3]] then
      if not is_down(p) then return j end
      fallback = fallback or j
    end
  end
  return fallback
end

-- Whether a peer other than the i-th is left to try.
local function others_left(peers, i, tried)
  for j = 1, #peers do
    if j ~= i and not tried[peers[j][3]] then return true end
  end
  return false
end

function M.balance()
  local name = ngx.var.wharf_app
  local a = byapp[name] or app_entry(name)
  if not a or #a.peers == 0 then return ngx.exit(ngx.ERROR) end
  local peers = a.peers
  local n = #peers
  local i
  local ctx = ngx.ctx
  local failed, status = balancer.get_last_failure()
  if not failed then
    if n == 1 then
      if a.timeout ~= DEFAULT_TIMEOUT then balancer.set_timeouts(CONNECT_S, a.timeout, a.timeout) end
      i = 1
    else
      a.rr = a.rr % n + 1
      -- Every peer once (at most 10 tries, proxy_next_upstream_timeout bounds the time).
      balancer.set_more_tries(math.min(n, 10) - 1)
      i = pick(peers, a.rr, NONE)
      ctx.wharf_tried = { [peers[i][3]] = true }
      ctx.wharf_last = peers[i]
      ctx.wharf_at = ngx.now()
      balancer.set_timeouts(QUICK_CONNECT_S, a.timeout, a.timeout)
    end
  else
    local last = ctx.wharf_last
    local tried = ctx.wharf_tried or {}
    if last then
      down:set(last[3], true, FAIL_S)
      ngx.update_time()
      if status == 504 and ngx.now() - ctx.wharf_at < CONNECT_TIMED_OUT_S then down:set("h:" .. last[1], true, FAIL_S) end
    end
    a = app_entry(name) or a
    peers, n = a.peers, #a.peers
    if n == 0 then return ngx.exit(ngx.ERROR) end
    a.rr = a.rr % n + 1
    -- Every peer tried: the next one anyway (a peer back up answers; none: 502).
    i = pick(peers, a.rr, tried) or a.rr
    local p = peers[i]
    tried[p[3]] = true
    ctx.wharf_tried = tried
    ctx.wharf_last = p
    ctx.wharf_at = ngx.now()
    balancer.set_timeouts(others_left(peers, i, tried) and QUICK_CONNECT_S or CONNECT_S, a.timeout, a.timeout)
  end
  local p = peers[i]
  local ok, err = balancer.set_current_peer(p[1], p[2])
  if not ok then
    ngx.log(ngx.ERR, "wharf: cannot set peer ", p[3], ": ", err)
    return ngx.exit(ngx.ERROR)
  end
end

-- ssl_certificate_by_lua: the certificate of the SNI name; an unknown name is refused in the handshake.
function M.certificate()
  local name = ssl.server_name()
  local id = name and dict:get("c:" .. name:lower())
  if not id then return ngx.exit(ngx.ERROR) end
  local c = certs:get(id)
  if not c then
    local v = cjson.decode(dict:get("k:" .. id) or "")
    if type(v) ~= "table" then return ngx.exit(ngx.ERROR) end
    local chain, err = ssl.parse_pem_cert(v.c or "")
    local key, err2 = ssl.parse_pem_priv_key(v.k or "")
    if not chain or not key then
      ngx.log(ngx.ERR, "wharf: certificate ", id, " does not parse: ", err or err2)
      return ngx.exit(ngx.ERROR)
    end
    c = { chain, key }
    certs:set(id, c)
  end
  ssl.clear_certs()
  local ok, err = ssl.set_cert(c[1])
  if ok then ok, err = ssl.set_priv_key(c[2]) end
  if not ok then
    ngx.log(ngx.ERR, "wharf: cannot use certificate ", id, ": ", err)
    return ngx.exit(ngx.ERROR)
  end
end

local APP = "^[a-z0-9][a-z0-9-]*$"
local HOST = "^[a-z0-9*][a-z0-9.-]*$"
local ID = "^[a-f0-9]+$"
local EPOCH = "^[A-Za-z0-9._-]+$"

local function fail(status, code, msg)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode({ code = code, message = msg }))
  return ngx.exit(status)
end

-- Checks a change set whole; answers the entries to write (nil: delete) or nil and an error.
local function check(cs)
  if type(cs) ~= "table" then return nil, "not a JSON object" end
  if cs.full ~= nil and type(cs.full) ~= "boolean" then return nil, "full: not a boolean" end
  if cs.epoch ~= nil and (type(cs.epoch) ~= "string" or #cs.epoch > 64 or not cs.epoch:match(EPOCH)) then return nil, "epoch: not a token" end
  if cs.full and not cs.epoch then return nil, "a full change set needs an epoch" end
  local set, del = {}, {}
  local newapps = {}
  for name, a in pairs(type(cs.apps) == "table" and cs.apps or {}) do
    if type(name) ~= "string" or #name > 63 or not name:match(APP) then return nil, "apps: bad app name " .. cjson.encode(tostring(name):sub(1, 80)) end
    if a == cjson.null then
      del["a:" .. name] = true
    else
      if type(a) ~= "table" then return nil, "apps." .. name .. ": not an object" end
      if a.s ~= "up" and a.s ~= "idle" and a.s ~= "maintenance" then return nil, "apps." .. name .. ".s: not up, idle or maintenance" end
      if type(a.b) ~= "number" or a.b < 0 or a.b ~= math.floor(a.b) then return nil, "apps." .. name .. ".b: not a byte count" end
      if type(a.t) ~= "number" or a.t < 1 or a.t > 3600 or a.t ~= math.floor(a.t) then return nil, "apps." .. name .. ".t: not 1..3600 s" end
      if type(a.p) ~= "table" or #a.p > 1000 then return nil, "apps." .. name .. ".p: not a list of peers" end
      local n = 0
      for _ in pairs(a.p) do n = n + 1 end
      if n ~= #a.p then return nil, "apps." .. name .. ".p: not a list of peers" end
      for _, p in ipairs(a.p) do
        if not peer(p) then return nil, "apps." .. name .. ".p: not an address:port pair: " .. cjson.encode(tostring(p):sub(1, 80)) end
      end
      set["a:" .. name] = cjson.encode({ s = a.s, b = a.b, t = a.t, p = a.p })
      newapps[name] = true
    end
  end
  for host, app in pairs(type(cs.hosts) == "table" and cs.hosts or {}) do
    if type(host) ~= "string" or #host > 253 or not host:match(HOST) then return nil, "hosts: bad host name " .. cjson.encode(tostring(host):sub(1, 260)) end
    if app == cjson.null then
      del["h:" .. host] = true
    else
      if type(app) ~= "string" or not app:match(APP) then return nil, "hosts." .. host .. ": bad app name" end
      if not newapps[app] and (cs.full or del["a:" .. app] or not dict:get("a:" .. app)) then
        return nil, "hosts." .. host .. ": unknown app " .. app
      end
      set["h:" .. host] = app
    end
  end
  local newcerts = {}
  for id, c in pairs(type(cs.certs) == "table" and cs.certs or {}) do
    if type(id) ~= "string" or #id > 64 or not id:match(ID) then return nil, "certs: bad id" end
    if c == cjson.null then
      del["k:" .. id] = true
    else
      if type(c) ~= "table" or type(c.c) ~= "string" or type(c.k) ~= "string" then return nil, "certs." .. id .. ": needs c and k" end
      local chain, err = ssl.parse_pem_cert(c.c)
      local key, err2 = ssl.parse_pem_priv_key(c.k)
      if not chain or not key then return nil, "certs." .. id .. ": does not parse: " .. tostring(err or err2) end
      set["k:" .. id] = cjson.encode({ c = c.c, k = c.k })
      newcerts[id] = true
    end
  end
  for host, id in pairs(type(cs.sni) == "table" and cs.sni or {}) do
    if type(host) ~= "string" or #host > 253 or not host:match(HOST) then return nil, "sni: bad host name" end
    if id == cjson.null then
      del["c:" .. host] = true
    else
      if type(id) ~= "string" or not id:match(ID) then return nil, "sni." .. host .. ": bad certificate id" end
      if not newcerts[id] and (cs.full or del["k:" .. id] or not dict:get("k:" .. id)) then return nil, "sni." .. host .. ": unknown certificate " .. id end
      set["c:" .. host] = id
    end
  end
  return set, del
end

-- The admin server (unix socket): POST /changes applies a change set, GET /epoch answers the epoch.
function M.admin()
  local method, uri = ngx.req.get_method(), ngx.var.uri
  if method == "GET" and uri == "/epoch" then
    ngx.header["Content-Type"] = "application/json"
    return ngx.say(cjson.encode({ epoch = dict:get("epoch") or cjson.null, free = dict:free_space(), capacity = dict:capacity() }))
  end
  if method ~= "POST" or uri ~= "/changes" then return fail(404, "WHARF_NOT_FOUND", "POST /changes or GET /epoch") end
  -- When the post came and went (ms epoch) and this worker's CPU meanwhile (ms): the router logs them.
  ngx.update_time()
  local t0, c0 = ngx.now(), os.clock()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then return fail(413, "WHARF_ROUTER_CHANGES_TOO_LARGE", "the change set is larger than the admin server's client_body_buffer_size") end
  local cs, err = cjson.decode(body)
  if not cs then return fail(400, "WHARF_ROUTER_BAD_CHANGES", "not JSON: " .. tostring(err)) end
  local set, del = check(cs)
  if not set then return fail(400, "WHARF_ROUTER_BAD_CHANGES", del) end
  local n = 0
  local done = {}
  -- Apps and certificates first, then what names them: a host never points at a missing app.
  for _, prefix in ipairs({ "a:", "k:", "h:", "c:" }) do
    for k, v in pairs(set) do
      if k:sub(1, 2) == prefix then
        local old = dict:get(k)
        local ok, e = dict:safe_set(k, v)
        if not ok then
          -- Put back what this set changed (new keys first: that frees room), so nothing of it stays.
          for i = #done, 1, -1 do
            if done[i][2] == nil then dict:delete(done[i][1]) end
          end
          for i = #done, 1, -1 do
            if done[i][2] ~= nil then dict:safe_set(done[i][1], done[i][2]) end
          end
          return fail(507, "WHARF_ROUTER_DICT_FULL", "the router's shared dict is full (" .. tostring(e) .. "): raise WHARF_ROUTER_DICT_MB (now " .. math.floor(dict:capacity() / 1048576) .. ") and restart the platform's nginx")
        end
        done[#done + 1] = { k, old }
        n = n + 1
      end
    end
  end
  if cs.full then
    -- Everything not in a full set goes (get_keys(0) locks the dict: only on a full set).
    for _, k in ipairs(dict:get_keys(0)) do
      if k ~= "epoch" and k ~= "v" and set[k] == nil then del[k] = true end
    end
  end
  for _, prefix in ipairs({ "h:", "c:", "a:", "k:" }) do
    for k in pairs(del) do
      if k:sub(1, 2) == prefix then dict:delete(k); n = n + 1 end
    end
  end
  if cs.full then dict:set("epoch", cs.epoch) end
  -- After every write: a worker that sees the new version reads the entries anew.
  dict:incr("v", 1, 0)
  ngx.header["Content-Type"] = "application/json"
  ngx.update_time()
  ngx.say(cjson.encode({ ok = true, changed = n, epoch = dict:get("epoch") or cjson.null, at = t0 * 1000, done = ngx.now() * 1000, cpu = (os.clock() - c0) * 1000 }))
end

return M
`
