# SPDX-License-Identifier: Apache-2.0
# A streamed file renamed while S3 refuses connections: the failed AbortMultipartUpload is
# never retried and the multipart upload stays open ("open uploads: ['b.bin']").
# A minimal reproduction of an artifuse bug the soak (scripts/soak) found; run it with the
# test S3 server's env loaded: set -a; . /var/tmp/artifuse-test-s3/env; set +a
import os as _os
ROOT = _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))))
BIN = _os.environ.get("ARTIFUSE_BIN", ROOT + "/build/fs/artifuse")
# stream a 40 MiB file, close it, S3 refused, rename it: AbortMultipartUpload fails and is never retried
import os, sys, subprocess, time, boto3, shutil
sys.path.insert(0, ROOT + "/tests/integration")
from faultproxy import FaultProxy
B="my-argo-artifacts-bucket"; mnt="/tmp/artifuse-repro/mnt5"; spool="/tmp/artifuse-repro/spool5"
shutil.rmtree(spool, ignore_errors=True); os.makedirs(mnt, exist_ok=True)
pre="soakrepro/%d" % time.time()
px=FaultProxy(os.environ["AWS_ENDPOINT_URL"])
p=subprocess.Popen([BIN,"mount","-f","--spool",spool,"--artifact-repository",f"s3://{B}/{pre}","--endpoint",px.endpoint,"--delete-on-unlink","--log-file","/tmp/artifuse-repro/log5",mnt])
while mnt not in open("/proc/mounts").read(): time.sleep(0.05)
s3=boto3.client("s3",endpoint_url=os.environ["AWS_ENDPOINT_URL"])
with open(mnt+"/b.bin","wb") as f:
    for i in range(40): f.write(os.urandom(1<<20))
px.refuse()
os.rename(mnt+"/b.bin", mnt+"/r.bin")
time.sleep(3); px.accept()
subprocess.run(["fusermount3","-u",mnt]); print("exit", p.wait())
print("open uploads:", [u["Key"][len(pre)+1:] for u in s3.list_multipart_uploads(Bucket=B,Prefix=pre+"/").get("Uploads",[])])
px.close()
