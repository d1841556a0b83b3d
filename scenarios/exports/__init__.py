"""Exports of a run's results for the market roles (metering operator, supplier,
community operator): per member and quarter hour, allocated energy, residual supply and
feed-in, in documented file layouts (:mod:`scenarios.exports.meter_csv`)."""
