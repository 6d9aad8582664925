# SPDX-License-Identifier: Apache-2.0
# `n2 spool`: kill -9 mid-stream, the file gone before the remount: the journaled multipart
# upload is dropped with its record but not aborted ("open uploads: ['big.bin']").
# (`n3` is a check that passes: a changed file renamed away leaves no old key.)
# A minimal reproduction of an artifuse bug the soak (scripts/soak) found; run it with the
# test S3 server's env loaded: set -a; . /var/tmp/artifuse-test-s3/env; set +a
import os as _os
ROOT = _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))))
BIN = _os.environ.get("ARTIFUSE_BIN", ROOT + "/build/fs/artifuse")
# N2: kill -9 during a streaming upload, remount, rm the file: the multipart upload stays open
# N3: an uploaded file changed and at once renamed away keeps its old object (--delete-on-unlink)
import os, sys, subprocess, time, boto3, signal, shutil
B="my-argo-artifacts-bucket"; mnt="/tmp/artifuse-repro/mnt3"; spool="/tmp/artifuse-repro/spool3"
shutil.rmtree(spool, ignore_errors=True); os.makedirs(mnt, exist_ok=True)
pre="soakrepro/%d" % time.time()
def mount():
    p=subprocess.Popen([BIN,"mount","-f","--spool",spool,"--artifact-repository",f"s3://{B}/{pre}","--delete-on-unlink","--log-file","/tmp/artifuse-repro/log3",mnt])
    while mnt not in open("/proc/mounts").read(): time.sleep(0.05)
    return p
s3=boto3.client("s3",endpoint_url=os.environ["AWS_ENDPOINT_URL"])
keys=lambda: sorted(o["Key"][len(pre)+1:] for o in s3.list_objects_v2(Bucket=B,Prefix=pre+"/").get("Contents",[]))
p=mount()
if sys.argv[1]=="n2":
    f=open(mnt+"/big.bin","wb")
    for i in range(20): f.write(os.urandom(1<<20))
    f.flush(); time.sleep(1)         # past --multipart-threshold: the stream has started
    p.kill(); p.wait(); subprocess.run(["fusermount3","-u","-z",mnt])
    try: f.close()
    except OSError: pass
    if len(sys.argv)>2: os.unlink(spool+"/files/big.bin")   # gone before the remount
    p=mount()
    if len(sys.argv)<=2: os.unlink(mnt+"/big.bin")
    subprocess.run(["fusermount3","-u",mnt]); print("exit", p.wait())
    print("open uploads:", [u["Key"][len(pre)+1:] for u in s3.list_multipart_uploads(Bucket=B,Prefix=pre+"/").get("Uploads",[])])
else:
    with open(mnt+"/a","wb") as f: f.write(b"v1\n"); f.flush(); os.fsync(f.fileno())
    with open(mnt+"/a","ab") as f: f.write(b"v2\n")
    os.rename(mnt+"/a", mnt+"/b")
    subprocess.run(["fusermount3","-u",mnt]); print("exit", p.wait())
    print("keys:", keys(), "(want ['b'])")
