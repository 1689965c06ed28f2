/**
 * The domain of the example: an order that is paid, shipped after a delay,
 * and can be cancelled (with a refund once paid). Pure data and functions.
 */
import { Duration, Schema } from "effect"
import { Decision, StateMachineView, Workflow } from "ironflow"

export const OrderId = Schema.String.pipe(Schema.brand("OrderId"))
export type OrderId = typeof OrderId.Type

// Inputs: commands from the application, results routed back from effect handlers, timers.
export class PlaceOrder extends Schema.TaggedClass<PlaceOrder>()("PlaceOrder", {
  orderId: OrderId,
  amount: Schema.Number,
  address: Schema.String
}) {}
export class PaymentSucceeded extends Schema.TaggedClass<PaymentSucceeded>()("PaymentSucceeded", {
  orderId: OrderId,
  paymentId: Schema.String
}) {}
export class PaymentDeclined extends Schema.TaggedClass<PaymentDeclined>()("PaymentDeclined", {
  orderId: OrderId,
  reason: Schema.String
}) {}
export class PaymentTimedOut extends Schema.TaggedClass<PaymentTimedOut>()("PaymentTimedOut", { orderId: OrderId }) {}
export class ShipmentDue extends Schema.TaggedClass<ShipmentDue>()("ShipmentDue", { orderId: OrderId }) {}
export class Shipped extends Schema.TaggedClass<Shipped>()("Shipped", {
  orderId: OrderId,
  trackingNumber: Schema.String
}) {}
export class CancelOrder extends Schema.TaggedClass<CancelOrder>()("CancelOrder", {
  orderId: OrderId,
  reason: Schema.String
}) {}
export class Refunded extends Schema.TaggedClass<Refunded>()("Refunded", { orderId: OrderId }) {}

export const OrderInput = Schema.Union(
  PlaceOrder,
  PaymentSucceeded,
  PaymentDeclined,
  PaymentTimedOut,
  ShipmentDue,
  Shipped,
  CancelOrder,
  Refunded
)
export type OrderInput = typeof OrderInput.Type

// Events: facts, named in the past tense.
export class OrderPlaced extends Schema.TaggedClass<OrderPlaced>()("OrderPlaced", {
  amount: Schema.Number,
  address: Schema.String
}) {}
export class PaymentCaptured extends Schema.TaggedClass<PaymentCaptured>()("PaymentCaptured", {
  paymentId: Schema.String
}) {}
export class ShipmentRequested extends Schema.TaggedClass<ShipmentRequested>()("ShipmentRequested", {}) {}
export class OrderShipped extends Schema.TaggedClass<OrderShipped>()("OrderShipped", {
  trackingNumber: Schema.String
}) {}
export class OrderCancelled extends Schema.TaggedClass<OrderCancelled>()("OrderCancelled", {
  reason: Schema.String
}) {}
export class RefundCompleted extends Schema.TaggedClass<RefundCompleted>()("RefundCompleted", {}) {}

export const OrderEvent = Schema.Union(
  OrderPlaced,
  PaymentCaptured,
  ShipmentRequested,
  OrderShipped,
  OrderCancelled,
  RefundCompleted
)
export type OrderEvent = typeof OrderEvent.Type

// Effects: work for the handlers.
export class ChargeCard extends Schema.TaggedClass<ChargeCard>()("ChargeCard", {
  orderId: OrderId,
  amount: Schema.Number
}) {}
export class RequestShipment extends Schema.TaggedClass<RequestShipment>()("RequestShipment", {
  orderId: OrderId,
  address: Schema.String
}) {}
export class RefundPayment extends Schema.TaggedClass<RefundPayment>()("RefundPayment", {
  orderId: OrderId,
  paymentId: Schema.String
}) {}

export const OrderEffect = Schema.Union(ChargeCard, RequestShipment, RefundPayment)
export type OrderEffect = typeof OrderEffect.Type

export const OrderStatus = Schema.Literal("new", "placed", "paid", "shipping", "shipped", "cancelled")

export const OrderState = Schema.Struct({
  status: OrderStatus,
  amount: Schema.Number,
  address: Schema.String,
  paymentId: Schema.NullOr(Schema.String),
  trackingNumber: Schema.NullOr(Schema.String),
  cancelReason: Schema.NullOr(Schema.String),
  refunded: Schema.Boolean
})
export type OrderState = typeof OrderState.Type

export const paymentTimeout = Duration.seconds(30)
export const shippingDelay = Duration.millis(1500)

export const OrderWorkflow = Workflow.make({
  type: "order",
  state: OrderState,
  input: OrderInput,
  event: OrderEvent,
  effect: OrderEffect,
  rejection: Schema.String,
  initialState: {
    status: "new",
    amount: 0,
    address: "",
    paymentId: null,
    trackingNumber: null,
    cancelReason: null,
    refunded: false
  },
  workflowId: { field: "orderId" },
  evolve: (state, event): OrderState => {
    switch (event._tag) {
      case "OrderPlaced":
        return { ...state, status: "placed", amount: event.amount, address: event.address }
      case "PaymentCaptured":
        return { ...state, status: "paid", paymentId: event.paymentId }
      case "ShipmentRequested":
        return { ...state, status: "shipping" }
      case "OrderShipped":
        return { ...state, status: "shipped", trackingNumber: event.trackingNumber }
      case "OrderCancelled":
        return { ...state, status: "cancelled", cancelReason: event.reason }
      case "RefundCompleted":
        return { ...state, refunded: true }
    }
  },
  decide: (_now, state, input) => {
    switch (input._tag) {
      case "PlaceOrder":
        if (state.status !== "new") return Decision.reject(`order ${input.orderId} was already placed`)
        if (input.amount <= 0) return Decision.reject("the amount must be positive")
        return Decision.accept(new OrderPlaced({ amount: input.amount, address: input.address })).pipe(
          Decision.withEffect(new ChargeCard({ orderId: input.orderId, amount: input.amount })),
          Decision.withTimerAfter(paymentTimeout, new PaymentTimedOut({ orderId: input.orderId }), { key: "payment" })
        )
      case "PaymentSucceeded":
        if (state.status !== "placed") return Decision.reject(`payment arrived while ${state.status}`)
        return Decision.accept(new PaymentCaptured({ paymentId: input.paymentId })).pipe(
          Decision.cancelTimer("payment"),
          Decision.withTimerAfter(shippingDelay, new ShipmentDue({ orderId: input.orderId }), { key: "ship" })
        )
      case "PaymentDeclined":
        if (state.status !== "placed") return Decision.reject(`decline arrived while ${state.status}`)
        return Decision.accept(new OrderCancelled({ reason: `payment declined: ${input.reason}` })).pipe(
          Decision.cancelTimer("payment")
        )
      case "PaymentTimedOut":
        if (state.status !== "placed") return Decision.reject("payment already settled")
        return Decision.accept(new OrderCancelled({ reason: "payment timed out" }))
      case "ShipmentDue":
        if (state.status !== "paid") return Decision.reject(`shipment due while ${state.status}`)
        return Decision.accept(new ShipmentRequested()).pipe(
          Decision.withEffect(new RequestShipment({ orderId: input.orderId, address: state.address }))
        )
      case "Shipped":
        return Decision.accept(new OrderShipped({ trackingNumber: input.trackingNumber }))
      case "CancelOrder":
        switch (state.status) {
          case "new":
            return Decision.reject("no such order")
          case "placed":
            return Decision.accept(new OrderCancelled({ reason: input.reason })).pipe(Decision.cancelTimer("payment"))
          case "paid":
            return Decision.accept(new OrderCancelled({ reason: input.reason })).pipe(
              Decision.cancelTimer("ship"),
              Decision.withEffect(new RefundPayment({ orderId: input.orderId, paymentId: state.paymentId ?? "" }))
            )
          default:
            return Decision.reject(`cannot cancel an order that is ${state.status}`)
        }
      case "Refunded":
        return Decision.accept(new RefundCompleted())
    }
  },
  // Cancelled orders that were paid end once the refund is recorded.
  isTerminal: (state) =>
    state.status === "shipped" || (state.status === "cancelled" && (state.paymentId === null || state.refunded)),
  // `WorkflowService.cancel` and `ironflow instances cancel order ID --reason TEXT` execute this input.
  cancel: (reason, orderId) => new CancelOrder({ orderId: OrderId.make(orderId), reason })
})

/** The order's state machine, for humans: `npx ironflow diagram order --workflows scratchpad/order-app/OrderWorkflow.ts`. */
export const OrderStateMachine = StateMachineView.make(OrderWorkflow, {
  stateInfo: (state) =>
    StateMachineView.StateInfo.make(state.status)
      .withNumericField("amount", state.amount)
      .withBoolField("refunded", state.refunded)
      .terminal(OrderWorkflow.isTerminal(state)),
  stateMachine: () =>
    StateMachineView.StateMachineDefinition.make("new")
      .withState(StateMachineView.StateDefinition.make("new"))
      .withState(StateMachineView.StateDefinition.make("placed"))
      .withState(StateMachineView.StateDefinition.make("paid"))
      .withState(StateMachineView.StateDefinition.make("shipping"))
      .withState(StateMachineView.StateDefinition.make("shipped").terminal())
      .withState(StateMachineView.StateDefinition.make("cancelled").terminal())
      .withTransition(
        StateMachineView.TransitionDefinition.make("new", "placed", "PlaceOrder").withEffect("ChargeCard").withTimer(
          "PaymentTimedOut"
        )
      )
      .withTransition(
        StateMachineView.TransitionDefinition.make("placed", "paid", "PaymentSucceeded").withTimer("ShipmentDue")
      )
      .withTransition(StateMachineView.TransitionDefinition.make("placed", "cancelled", "PaymentDeclined"))
      .withTransition(StateMachineView.TransitionDefinition.make("placed", "cancelled", "PaymentTimedOut"))
      .withTransition(StateMachineView.TransitionDefinition.make("placed", "cancelled", "CancelOrder"))
      .withTransition(
        StateMachineView.TransitionDefinition.make("paid", "cancelled", "CancelOrder").withEffect("RefundPayment")
      )
      .withTransition(
        StateMachineView.TransitionDefinition.make("paid", "shipping", "ShipmentDue").withEffect("RequestShipment")
      )
      .withTransition(StateMachineView.TransitionDefinition.make("shipping", "shipped", "Shipped"))
})
