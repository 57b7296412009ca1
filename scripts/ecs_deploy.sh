#!/usr/bin/env bash
# ECS steps of the deploy workflow (.github/workflows/deploy.yml), usable by hand as well.
#
#   scripts/ecs_deploy.sh register FAMILY IMAGE   new revision of FAMILY running IMAGE; prints its ARN
#   scripts/ecs_deploy.sh migrate TASK_DEF_ARN    run the one-shot migration task, wait, fail on exit != 0
#   scripts/ecs_deploy.sh update TASK_DEF_ARN     point the host service at it and wait until stable
#
# Reads ECS_CLUSTER, and for migrate SUBNET_IDS (comma-separated) and SECURITY_GROUP_ID, and for
# update ECS_SERVICE, from the environment (terraform output gives them all). Needs aws and jq.
set -euo pipefail

die() { echo "ecs_deploy: $*" >&2; exit 1; }
need() { [ -n "${!1:-}" ] || die "$1 is not set"; }

register() {
    local family=$1 image=$2
    # The newest revision carries everything Terraform set (settings, secrets, roles); only
    # the image changes. Read-only fields are dropped before registering it again.
    aws ecs describe-task-definition --task-definition "$family" --query taskDefinition --output json \
        | jq --arg image "$image" '
            .containerDefinitions[0].image = $image
            | del(.taskDefinitionArn, .revision, .status, .requiresAttributes, .compatibilities,
                  .registeredAt, .registeredBy, .deregisteredAt)' \
        > "${TMPDIR:-/tmp}/taskdef-$family.json"
    aws ecs register-task-definition --cli-input-json "file://${TMPDIR:-/tmp}/taskdef-$family.json" \
        --query taskDefinition.taskDefinitionArn --output text
}

migrate() {
    local task_definition=$1 task exit_code
    need ECS_CLUSTER; need SUBNET_IDS; need SECURITY_GROUP_ID
    task=$(aws ecs run-task --cluster "$ECS_CLUSTER" --task-definition "$task_definition" \
        --launch-type FARGATE --started-by "deploy-migration" \
        --network-configuration "awsvpcConfiguration={subnets=[$SUBNET_IDS],securityGroups=[$SECURITY_GROUP_ID],assignPublicIp=ENABLED}" \
        --query 'tasks[0].taskArn' --output text)
    [ -n "$task" ] && [ "$task" != "None" ] || die "the migration task did not start"
    echo "migration task $task started; waiting for it to stop"
    aws ecs wait tasks-stopped --cluster "$ECS_CLUSTER" --tasks "$task"
    exit_code=$(aws ecs describe-tasks --cluster "$ECS_CLUSTER" --tasks "$task" \
        --query 'tasks[0].containers[0].exitCode' --output text)
    [ "$exit_code" = "0" ] || die "migration task exited with $exit_code (see its CloudWatch log group)"
    echo "migration done"
}

update() {
    local task_definition=$1
    need ECS_CLUSTER; need ECS_SERVICE
    aws ecs update-service --cluster "$ECS_CLUSTER" --service "$ECS_SERVICE" \
        --task-definition "$task_definition" --query service.taskDefinition --output text
    echo "waiting for $ECS_SERVICE to become stable"
    aws ecs wait services-stable --cluster "$ECS_CLUSTER" --services "$ECS_SERVICE"
    echo "service stable on $task_definition"
}

case "${1:-}" in
    register) [ $# -eq 3 ] || die "usage: $0 register FAMILY IMAGE"; register "$2" "$3" ;;
    migrate) [ $# -eq 2 ] || die "usage: $0 migrate TASK_DEF_ARN"; migrate "$2" ;;
    update) [ $# -eq 2 ] || die "usage: $0 update TASK_DEF_ARN"; update "$2" ;;
    *) die "usage: $0 register|migrate|update ..." ;;
esac
