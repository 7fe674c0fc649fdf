"""The seed's change capture, as the CDC benchmark's baseline: python-mysql-replication
reads the binlog from a position, and every row change is sent to Kinesis with one
boto3 put_record call, waited for before the next.

bench/cdc.ts runs it in a virtualenv it makes (mysql-replication, boto3 from PyPI)
and prints the figures. Prints one JSON line: {"events": N, "seconds": S}, S from
the first change read to the last record acknowledged.
"""
import argparse
import json
import time

import boto3
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("host", "user", "password", "schema", "table", "file", "stream", "endpoint", "region"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--position", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args()

    kinesis = boto3.client(
        "kinesis",
        endpoint_url=args.endpoint,
        region_name=args.region,
        aws_access_key_id="ferry",
        aws_secret_access_key="ferry",
    )
    reader = BinLogStreamReader(
        connection_settings={"host": args.host, "port": args.port, "user": args.user, "passwd": args.password},
        server_id=987654,
        log_file=args.file,
        log_pos=args.position,
        resume_stream=True,
        blocking=True,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
        only_schemas=[args.schema],
        only_tables=[args.table],
    )
    sent = 0
    started = None
    try:
        for event in reader:
            for row in event.rows:
                if started is None:
                    started = time.monotonic()
                if isinstance(event, UpdateRowsEvent):
                    change = {"op": "update", "before": row["before_values"], "after": row["after_values"]}
                    key = row["after_values"].get("id")
                elif isinstance(event, WriteRowsEvent):
                    change = {"op": "insert", "after": row["values"]}
                    key = row["values"].get("id")
                else:
                    change = {"op": "delete", "before": row["values"]}
                    key = row["values"].get("id")
                change.update(table=f"{event.schema}.{event.table}", position=f"{reader.log_file}:{reader.log_pos}", ts=event.timestamp)
                kinesis.put_record(StreamName=args.stream, Data=json.dumps(change, default=str).encode(), PartitionKey=str(key))
                sent += 1
                if sent >= args.events:
                    print(json.dumps({"events": sent, "seconds": time.monotonic() - started}))
                    return
    finally:
        reader.close()


if __name__ == "__main__":
    main()
