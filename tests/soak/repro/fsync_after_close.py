# SPDX-License-Identifier: Apache-2.0
# fsync() right after close() can return 0 before the file is in S3 (the RELEASE hand-off
# races the fsync). Prints VIOLATION lines; "bad 0" means it did not show this time.
# A minimal reproduction of an artifuse bug the soak (scripts/soak) found; run it with the
# test S3 server's env loaded: set -a; . /var/tmp/artifuse-test-s3/env; set +a
import os as _os
ROOT = _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))))
BIN = _os.environ.get("ARTIFUSE_BIN", ROOT + "/build/fs/artifuse")
import os, sys, subprocess, time, boto3, threading
mnt="/tmp/artifuse-repro/mnt"; spool="/tmp/artifuse-repro/spool2"
import shutil; shutil.rmtree(spool, ignore_errors=True); os.makedirs(mnt, exist_ok=True)
pre="soakrepro/%d" % time.time()
p=subprocess.Popen([BIN,"mount","-f","--spool",spool,"--artifact-repository","s3://my-argo-artifacts-bucket/"+pre,"--delete-on-unlink","--log-file","/tmp/artifuse-repro/log2",mnt])
while mnt not in open("/proc/mounts").read(): time.sleep(0.05)
s3=boto3.client("s3",endpoint_url=os.environ["AWS_ENDPOINT_URL"])
def get(k):
    try: return s3.get_object(Bucket="my-argo-artifacts-bucket",Key=pre+"/"+k)["Body"].read()
    except Exception as e: return None
bad=0
stop=False
def bg():
    i=0
    while not stop:
        with open(mnt+"/bg%d"%(i%5),"wb") as f: f.write(os.urandom(60000))
        i+=1
if True:  # two background writers keep the upload queue busy
    for _ in range(2): threading.Thread(target=bg,daemon=True).start()
try:
    for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 100):
        d=f"d{i}"; os.mkdir(mnt+"/"+d)
        data=os.urandom(53354)
        with open(f"{mnt}/{d}/g0","wb") as f: f.write(data)
        fd=os.open(f"{mnt}/{d}/g0",os.O_WRONLY|os.O_APPEND); os.fsync(fd)
        g=get(f"{d}/g0")
        if g!=data: bad+=1; print("VIOLATION", d, None if g is None else len(g))
        os.close(fd)
    print("bad", bad)
finally:
    stop=True
    subprocess.run(["fusermount3","-u",mnt]); p.wait()
