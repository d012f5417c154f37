#!/bin/sh
# Run once by the influxdb:2 image after its initial setup
# (/docker-entrypoint-initdb.d).  ndtpipe's UDR reads and writes through
# InfluxDB's 1.x-compatible API (influx:http://influxdb:8086/ndt: the 2.x
# backend writes only), whose basic authentication takes a v1
# authorization, not the 2.x user: create one for ndtpipe on the bucket.
# The bucket answers as database "ndt" through its virtual DBRP mapping.
set -eu
bucket_id=$(influx bucket list --name "$DOCKER_INFLUXDB_INIT_BUCKET" --hide-headers | cut -f1)
influx v1 auth create --org "$DOCKER_INFLUXDB_INIT_ORG" --username "$NDT_INFLUX_USERNAME" \
    --password "$NDT_INFLUX_PASSWORD" --read-bucket "$bucket_id" --write-bucket "$bucket_id" >/dev/null
echo "ndtpipe: v1 authorization $NDT_INFLUX_USERNAME on bucket $DOCKER_INFLUXDB_INIT_BUCKET"
