#!/bin/sh
# One-shot: the namespace and the refund search attributes, once the server answers.
set -eu
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
    echo "waiting for Temporal at $TEMPORAL_ADDRESS"
    sleep 2
done
temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1 ||
    temporal operator namespace create --namespace "$NAMESPACE" --retention 30d
for attribute in RefundState=Keyword ReviewDeadline=Datetime CertificateId=Keyword \
    PaymentChannels=KeywordList; do
    name="${attribute%%=*}"
    kind="${attribute##*=}"
    temporal operator search-attribute create --namespace "$NAMESPACE" \
        --name "$name" --type "$kind" 2>/dev/null || echo "$name already registered"
done
