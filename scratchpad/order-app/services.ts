/**
 * The outside world of the example, as Effect services: a payment gateway that
 * times out now and then, and a carrier that cannot deliver to some addresses.
 */
import { Context, Data, Effect, Layer, Random } from "effect"

export class GatewayTimeout extends Data.TaggedError("GatewayTimeout")<{ readonly orderId: string }> {
  override get message() {
    return `payment gateway timed out charging ${this.orderId}`
  }
}

export class CarrierRejected extends Data.TaggedError("CarrierRejected")<{ readonly address: string }> {
  override get message() {
    return `carrier API rejected the address "${this.address}"`
  }
}

export class PaymentGateway extends Context.Tag("example/PaymentGateway")<PaymentGateway, {
  /** Charges a card; `attempt` lets the simulation fail the first tries of flaky orders. */
  readonly charge: (request: {
    readonly orderId: string
    readonly amount: number
    readonly idempotencyKey: string
    readonly attempt: number
  }) => Effect.Effect<
    { readonly approved: true; readonly paymentId: string } | { readonly approved: false; readonly reason: string },
    GatewayTimeout
  >
  readonly refund: (paymentId: string) => Effect.Effect<void>
}>() {}

export class Carrier extends Context.Tag("example/Carrier")<Carrier, {
  readonly ship: (address: string) => Effect.Effect<string, CarrierRejected>
}>() {}

/** Amounts ending in .13 time out on the first two attempts; amounts over 10,000 are declined. */
export const PaymentGatewayLive = Layer.succeed(PaymentGateway, {
  charge: ({ amount, attempt, idempotencyKey, orderId }) =>
    Effect.gen(function*() {
      yield* Effect.sleep("20 millis")
      if (Math.round(amount * 100) % 100 === 13 && attempt <= 2) return yield* new GatewayTimeout({ orderId })
      if (amount > 10_000) return { approved: false, reason: "insufficient funds" } as const
      return { approved: true, paymentId: `pay_${idempotencyKey.slice(-12)}` } as const
    }),
  refund: () => Effect.sleep("10 millis")
})

/** Addresses starting with "Nowhere" are always rejected. */
export const CarrierLive = Layer.succeed(Carrier, {
  ship: (address) =>
    address.startsWith("Nowhere")
      ? Effect.fail(new CarrierRejected({ address }))
      : Effect.map(Random.nextIntBetween(100000, 999999), (n) => `TRK${n}`).pipe(Effect.delay("30 millis"))
})
