"""State survives ``evpm-emulator stop`` + ``start``: S3, DynamoDB, SSM, SQS, Kinesis, IAM,
Logs, SNS, CloudFormation (a redeploy is an update, not a conflict), Step Functions (state
machines, finished executions with their history; a running one comes back ABORTED)."""

from __future__ import annotations

import json
import sys
import time

import pytest

from tests.integration.emulator.conftest import Emulator

pytestmark = pytest.mark.integration

BIG = b"x" * (3 * 1024 * 1024)  # larger than the in-memory spool: exercises rolled-over files
# a service call and execution logging (as the lifecycle's): a finished execution's worker
# and logging session hold boto clients, which do not pickle
PASS = json.dumps({"StartAt": "Call", "States": {
    "Call": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ssm:getParameter",
             "Parameters": {"Name": "/evpm/pin"}, "ResultPath": "$.pin", "Next": "P"},
    "P": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}})
WAIT = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600,
                                                   "End": True}}})
TEMPLATE = json.dumps({"Resources": {"Param": {"Type": "AWS::SSM::Parameter", "Properties": {
    "Name": "/evpm/cfn", "Type": "String", "Value": "from-cfn"}}}})


def _finished(sfn: object, arn: str, timeout: float = 10.0) -> str:
    """The execution's status once it is no longer RUNNING (or RUNNING after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        status = sfn.describe_execution(executionArn=arn)["status"]  # type: ignore[attr-defined]
        if status != "RUNNING" or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_state_survives_restart(emulator: Emulator) -> None:
    s3, ddb, ssm = emulator.client("s3"), emulator.client("dynamodb"), emulator.client("ssm")
    sqs, kinesis = emulator.client("sqs"), emulator.client("kinesis")
    iam, logs, sns = emulator.client("iam"), emulator.client("logs"), emulator.client("sns")
    cfn = emulator.client("cloudformation")

    s3.create_bucket(Bucket="persist-bucket")
    s3.put_object(Bucket="persist-bucket", Key="models/a.json", Body=b'{"v": 1}')
    s3.put_object(Bucket="persist-bucket", Key="big.bin", Body=BIG)
    ddb.create_table(TableName="persist-table", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    ddb.batch_write_item(RequestItems={"persist-table": [
        {"PutRequest": {"Item": {"id": {"S": f"item-{i}"}}}} for i in range(20)]})
    ssm.put_parameter(Name="/evpm/pin", Value="ev-rul:3", Type="String")
    queue = sqs.create_queue(QueueName="persist-queue")["QueueUrl"]
    for i in range(7):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}")
    kinesis.create_stream(StreamName="persist-stream", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="persist-stream",
                                            WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    kinesis.put_records(StreamName="persist-stream", Records=[
        {"Data": str(i).encode(), "PartitionKey": "p"} for i in range(300)])
    iam.create_role(RoleName="persist-role", AssumeRolePolicyDocument="{}")
    logs.create_log_group(logGroupName="/evpm/persist")
    topic = sns.create_topic(Name="persist-topic")["TopicArn"]
    cfn.create_stack(StackName="persist-stack", TemplateBody=TEMPLATE)
    for _ in range(120):
        if not cfn.describe_stacks(StackName="persist-stack")["Stacks"][0][
                "StackStatus"].endswith("IN_PROGRESS"):
            break
        time.sleep(0.5)

    sfn = emulator.client("stepfunctions")
    role = "arn:aws:iam::000000000000:role/persist-role"
    group = logs.describe_log_groups(logGroupNamePrefix="/evpm/persist")["logGroups"][0]["arn"]
    logging = {"level": "ALL", "includeExecutionData": True,
               "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group}}]}
    quick = sfn.create_state_machine(name="persist-pass", roleArn=role, definition=PASS,
                                     loggingConfiguration=logging)["stateMachineArn"]
    slow = sfn.create_state_machine(name="persist-wait", roleArn=role, definition=WAIT)[
        "stateMachineArn"]
    done = sfn.start_execution(stateMachineArn=quick, name="done", input='{"a": 1}')[
        "executionArn"]
    assert _finished(sfn, done) == "SUCCEEDED"
    history = [e["type"] for e in sfn.get_execution_history(executionArn=done)["events"]]
    running = sfn.start_execution(stateMachineArn=slow, name="waiting")["executionArn"]

    t0 = time.perf_counter()
    stopped = emulator.stop()
    stop_seconds = time.perf_counter() - t0
    assert not stopped["forced"], "graceful shutdown (which saves) did not finish"
    manifest = json.loads((emulator.state_dir / "snapshots" / "manifest.json").read_text())
    saved = manifest["last_save"]
    assert saved["reason"] == "shutdown"
    for service in ("s3", "dynamodb", "ssm", "sqs", "kinesis", "iam", "logs", "sns",
                    "cloudformation", "stepfunctions"):
        assert saved["services"][service]["status"] == "saved", (service, saved)

    t0 = time.perf_counter()
    started = emulator.start()
    start_seconds = time.perf_counter() - t0
    manifest = json.loads((emulator.state_dir / "snapshots" / "manifest.json").read_text())
    loaded = manifest["last_load"]
    sys.stderr.write(
        f"\n[persistence] stop {stop_seconds:.1f}s (save {saved['seconds']}s), start "
        f"{start_seconds:.1f}s (load {loaded['seconds']}s), rss {started.get('rss_mb')} MB\n")
    failed = {k: v for k, v in loaded["services"].items() if v["status"] == "failed"}
    assert not failed

    s3, ddb, ssm = emulator.client("s3"), emulator.client("dynamodb"), emulator.client("ssm")
    sqs, kinesis = emulator.client("sqs"), emulator.client("kinesis")
    assert s3.get_object(Bucket="persist-bucket", Key="models/a.json")["Body"].read() == \
        b'{"v": 1}'
    assert s3.get_object(Bucket="persist-bucket", Key="big.bin")["Body"].read() == BIG
    assert ddb.scan(TableName="persist-table")["Count"] == 20
    assert ssm.get_parameter(Name="/evpm/pin")["Parameter"]["Value"] == "ev-rul:3"
    assert ssm.get_parameter(Name="/evpm/cfn")["Parameter"]["Value"] == "from-cfn"
    bodies = set()
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", []):
            bodies.add(message["Body"])
        if len(bodies) == 7:
            break
    assert bodies == {f"m{i}" for i in range(7)}
    shard = kinesis.list_shards(StreamName="persist-stream")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="persist-stream", ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    assert [int(r["Data"]) for r in records] == list(range(300))
    # new writes continue the sequence after a restore
    kinesis.put_record(StreamName="persist-stream", Data=b"300", PartitionKey="p")
    assert emulator.client("iam").get_role(RoleName="persist-role")["Role"]["RoleName"]
    groups = emulator.client("logs").describe_log_groups(logGroupNamePrefix="/evpm/persist")
    assert [g["logGroupName"] for g in groups["logGroups"]] == ["/evpm/persist"]
    assert topic in [t["TopicArn"] for t in emulator.client("sns").list_topics()["Topics"]]
    # the stack is known: deploying it again is an update (no-op), not AlreadyExists
    cfn = emulator.client("cloudformation")
    assert cfn.describe_stacks(StackName="persist-stack")["Stacks"][0]["StackStatus"] == \
        "CREATE_COMPLETE"
    with pytest.raises(cfn.exceptions.AlreadyExistsException):
        cfn.create_stack(StackName="persist-stack", TemplateBody=TEMPLATE)
    # Step Functions: the finished execution with its output and history, the running one
    # aborted (a new process cannot resume it), and the machines run new executions
    sfn = emulator.client("stepfunctions")
    described = sfn.describe_execution(executionArn=done)
    assert described["status"] == "SUCCEEDED" and json.loads(described["output"]) == {"ok": 1}
    assert [e["type"] for e in sfn.get_execution_history(executionArn=done)["events"]] == \
        history
    assert "ExecutionSucceeded" in history
    aborted = sfn.describe_execution(executionArn=running)
    assert aborted["status"] == "ABORTED" and "restarted" in aborted.get("cause", "")
    listed = sfn.list_executions(stateMachineArn=quick)["executions"]
    assert [e["executionArn"] for e in listed] == [done]
    again = sfn.start_execution(stateMachineArn=quick, name="after-restart")["executionArn"]
    assert _finished(sfn, again) == "SUCCEEDED"


def test_a_run_that_never_loaded_the_snapshots_does_not_save_over_them(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.client("ssm").put_parameter(Name="/evpm/kept", Value="v1", Type="String",
                                         Overwrite=True)
    emulator.stop()
    saved = (emulator.state_dir / "snapshots" / "ssm")
    before = {p.name: p.read_bytes() for p in saved.iterdir() if p.is_file()}
    assert before
    # GIVEN a start whose load fails before any snapshot is read (as a plugin error did)
    monkeypatch.setenv("EVPM_FAULT_INJECT", "load")
    emulator.start()
    ssm = emulator.client("ssm")
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name="/evpm/kept")  # this run holds an empty cloud
    # WHEN it stops (the shutdown save runs)
    emulator.stop()
    # THEN the snapshots are untouched, and the next good start has the state back
    manifest = json.loads((emulator.state_dir / "snapshots" / "manifest.json").read_text())
    assert manifest["last_save"]["reason"] == "shutdown"  # still the save of the good run
    assert {p.name: p.read_bytes() for p in saved.iterdir() if p.is_file()} == before
    monkeypatch.delenv("EVPM_FAULT_INJECT")
    emulator.start()
    assert emulator.client("ssm").get_parameter(Name="/evpm/kept")["Parameter"]["Value"] == \
        "v1"


def test_start_and_stop_are_idempotent(emulator: Emulator) -> None:
    first = emulator.status()
    again = emulator.start()  # already running: exit 0, same pid
    assert again["running"] and again["pid"] == first["pid"]
    assert emulator.status()["ready"]
