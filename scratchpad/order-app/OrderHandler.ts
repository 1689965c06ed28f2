/**
 * The handler of the order workflow's effects. It needs the PaymentGateway
 * and the Carrier; the application's Layers provide them.
 */
import { Effect, Option } from "effect"
import { RetryPolicy } from "ironflow"
import { OrderWorkflow, PaymentDeclined, PaymentSucceeded, Refunded, Shipped } from "./OrderWorkflow.js"
import { Carrier, PaymentGateway } from "./services.js"

export const OrderHandler = OrderWorkflow.handler(
  (effect, ctx) =>
    Effect.gen(function*() {
      switch (effect._tag) {
        case "ChargeCard": {
          const gateway = yield* PaymentGateway
          const result = yield* gateway.charge({
            orderId: effect.orderId,
            amount: effect.amount,
            idempotencyKey: ctx.idempotencyKey,
            attempt: ctx.attempt
          })
          return Option.some(
            result.approved
              ? new PaymentSucceeded({ orderId: effect.orderId, paymentId: result.paymentId })
              : new PaymentDeclined({ orderId: effect.orderId, reason: result.reason })
          )
        }
        case "RequestShipment": {
          const carrier = yield* Carrier
          const trackingNumber = yield* carrier.ship(effect.address)
          return Option.some(new Shipped({ orderId: effect.orderId, trackingNumber }))
        }
        case "RefundPayment": {
          const gateway = yield* PaymentGateway
          yield* gateway.refund(effect.paymentId)
          return Option.some(new Refunded({ orderId: effect.orderId }))
        }
      }
    }),
  // Short delays so the example shows retries and a dead letter within seconds; an attempt that hangs
  // (a gateway that never answers) fails after 10 seconds and is retried like any failure.
  {
    retryPolicy: RetryPolicy.make({ maxAttempts: 4, baseDelay: "200 millis", maxDelay: "1 second" }),
    timeout: "10 seconds"
  }
)
